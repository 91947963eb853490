"""Ready-made augmentation pipelines from the papers.

Each preset returns a :class:`MultiViewAugmenter`; the ``*_pipeline`` functions return the list
of layers for one view so that users can extend or mix them.
"""

import warnings

from keras_ssl.augment.blur import RandomGaussianBlur
from keras_ssl.augment.color import ColorJitter, RandomGrayscale
from keras_ssl.augment.crop import RandomResizedCrop
from keras_ssl.augment.flip import RandomHorizontalFlip
from keras_ssl.augment.multi_view import MultiViewAugmenter
from keras_ssl.augment.solarize import RandomSolarize
from keras_ssl.validation import check_in_range, check_int

BLUR_MIN_SIDE = 64
"""Images at least this many pixels on their short side get Gaussian blur by default."""

BYOL_JITTER = (0.4, 0.4, 0.2, 0.1)
"""BYOL's (and DINO's) colour jitter strengths: brightness, contrast, saturation, hue."""


def check_jitter(jitter):
    """Returns ``jitter`` as a tuple of four non-negative numbers ``(brightness, contrast,
    saturation, hue)``.

    Raises:
        ValueError: if ``jitter`` is not four numbers (each checked by ``ColorJitter`` too).
    """
    try:
        values = tuple(jitter)
    except TypeError:
        values = ()
    if isinstance(jitter, (str, bytes)) or len(values) != 4:
        raise ValueError(
            "`jitter` must be 4 numbers (brightness, contrast, saturation, hue); received "
            f"{jitter!r}. Fix: pass e.g. jitter={BYOL_JITTER} (BYOL)."
        )
    for name, value in zip(("brightness", "contrast", "saturation", "hue"), values):
        check_in_range(value, f"jitter {name}", 0, fix=f"pass e.g. jitter={BYOL_JITTER}.")
    return values


MIN_VIEW_SIDE = 8
"""Random crops whose region is smaller than this many pixels on a side trigger a warning
(:func:`warn_small_crops`): at 28 px, SimCLR's 8% crops (7.9 px) took kNN from above to far
below a random-init encoder's (``benchmarks/own_data.py``)."""


def warn_small_crops(preset, image_shape, scale, name="crop_scale", fix=None, stacklevel=3):
    """Warns (``UserWarning``) when the smallest crop of ``scale`` keeps fewer than
    :data:`MIN_VIEW_SIDE` pixels of the image's short side.

    Args:
        preset: the preset's name, for the message.
        image_shape: ``(height, width, channels)`` of the input images.
        scale: ``(min, max)`` area fraction of the crops.
        name: the argument's name, for the message.
        fix: the recommended value (default: the scale a method's default uses at this size).
        stacklevel: passed to ``warnings.warn`` (3: the caller of the preset function).

    Returns:
        True if it warned.
    """
    height, width, _ = _check_image_shape(image_shape)
    side = min(height, width)
    smallest = side * float(scale[0]) ** 0.5
    if smallest >= MIN_VIEW_SIDE:
        return False
    if fix is None:
        fix = f"{name}=({min_crop_area(image_shape):.2f}, 1.0)"
    warnings.warn(
        f"{preset}: {name}={tuple(scale)} makes crops as small as {smallest:.1f} px of a "
        f"{side}-px image, below {MIN_VIEW_SIDE} px: too little of a small image to "
        f"recognise. Fix: pass {fix}, which a method's default augmentation uses at this size "
        "(augmenter=None; keras_ssl.augment.presets.default_augmenter), or upsample the images.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return True


def _check_image_shape(image_shape):
    try:
        height, width, channels = image_shape
        valid = all(isinstance(v, int) and not isinstance(v, bool) for v in image_shape)
    except (TypeError, ValueError):
        valid = False
    if not valid or height < 1 or width < 1 or channels not in (1, 3):
        raise ValueError(
            f"`image_shape` must be (height, width, channels) with positive ints and 1 or 3 "
            f"channels; received {image_shape!r}. Fix: pass e.g. image_shape=(32, 32, 3) or "
            "(28, 28, 1)."
        )
    return height, width, channels


def blur_kernel_size(side):
    """SimCLR's blur kernel for an image side: 10% of the side, made odd (at least 3).

    SimCLR's code takes ``side // 10`` and uses ``2 * (side // 10 // 2) + 1`` taps
    (23 for 224-pixel images).
    """
    return max(3, 2 * (side // 10 // 2) + 1)


def simclr_pipeline(
    image_shape,
    crop_scale=(0.08, 1.0),
    color_strength=0.5,
    blur=None,
    color_probability=0.8,
    grayscale_probability=0.2,
):
    """The layers of one SimCLR view; see :func:`simclr` for the arguments.

    Returns:
        A list of keras_ssl augmentation layers, applied in order.
    """
    height, width, channels = _check_image_shape(image_shape)
    fix = "pass e.g. color_strength=0.5 (SimCLR's s: 1.0 for ImageNet, 0.5 for CIFAR-10)."
    check_in_range(color_strength, "color_strength", low=0, fix=fix)
    if blur is None:
        blur = min(height, width) >= BLUR_MIN_SIDE
    jitter = 0.8 * color_strength
    layers = [
        RandomResizedCrop(height, width, scale=crop_scale),
        RandomHorizontalFlip(0.5),
        ColorJitter(
            brightness=jitter,
            contrast=jitter,
            saturation=jitter,
            hue=min(0.2 * color_strength, 0.5),
            probability=color_probability,
        ),
    ]
    if channels == 3:
        layers.append(RandomGrayscale(grayscale_probability))
    if blur:
        layers.append(RandomGaussianBlur(blur_kernel_size(min(height, width)), (0.1, 2.0), 0.5))
    return layers


def simclr(
    image_shape,
    crop_scale=(0.08, 1.0),
    color_strength=0.5,
    blur=None,
    color_probability=0.8,
    grayscale_probability=0.2,
):
    """SimCLR's two-view augmentation (Chen et al. 2020, arXiv:2002.05709, appendix A).

    Both views use the same recipe with independent randomness: a random resized crop back to
    ``(height, width)`` (area ``crop_scale``, aspect ratio 3/4 to 4/3), a horizontal flip with
    probability 0.5, colour jitter of strength ``s = color_strength`` (brightness, contrast and
    saturation ``0.8 s``, hue ``0.2 s``, random order) with probability ``color_probability``,
    grayscale with probability ``grayscale_probability`` (RGB only) and, when ``blur``, Gaussian
    blur with probability 0.5, ``sigma ~ U(0.1, 2.0)`` and a kernel 10% of the image side.
    1-channel images get brightness/contrast jitter and no grayscale step.

    Args:
        image_shape: ``(height, width, channels)`` of the input and output views; channels 1 or 3.
        crop_scale: ``(min, max)`` area fraction of the random crop.
        color_strength: SimCLR's colour strength ``s`` (1.0 on ImageNet, 0.5 on CIFAR-10).
        blur: whether to blur; ``None`` blurs images whose short side is at least 64 pixels
            (SimCLR blurs ImageNet views and skips blur on CIFAR-10).
        color_probability: chance that a view is colour-jittered (SimCLR: 0.8).
        grayscale_probability: chance that an RGB view is turned gray (SimCLR: 0.2).

    Returns:
        A :class:`MultiViewAugmenter` with two identical, separately built pipelines.

    Raises:
        ValueError: for a bad ``image_shape``, ``crop_scale``, ``color_strength`` or
            probability.

    Warns:
        UserWarning: when the smallest crop keeps fewer than :data:`MIN_VIEW_SIDE` pixels of
            the image's side (e.g. the default 8% crops of a 28-px image); methods' defaults
            (:func:`default_augmenter`) adapt the crops instead.
    """
    arguments = dict(
        image_shape=image_shape,
        crop_scale=crop_scale,
        color_strength=color_strength,
        blur=blur,
        color_probability=color_probability,
        grayscale_probability=grayscale_probability,
    )
    return _simclr_views("simclr", arguments)


def _simclr_views(preset, arguments):
    """Two identical, separately built :func:`simclr_pipeline` views of ``arguments``; warns
    (naming ``preset``) when their crops are too small for the image (:func:`warn_small_crops`)."""
    augmenter = MultiViewAugmenter([simclr_pipeline(**arguments), simclr_pipeline(**arguments)])
    warn_small_crops(preset, arguments["image_shape"], arguments["crop_scale"], stacklevel=4)
    return augmenter


def byol_pipeline(
    image_shape,
    crop_scale=(0.08, 1.0),
    blur_probability=1.0,
    solarize_probability=0.0,
    color_probability=0.8,
    grayscale_probability=0.2,
    jitter=BYOL_JITTER,
):
    """The layers of one BYOL view; see :func:`byol` for the arguments.

    ``blur_probability`` and ``solarize_probability`` are this view's own probabilities; a
    step whose probability is 0 is left out of the list.

    Returns:
        A list of keras_ssl augmentation layers, applied in order.
    """
    height, width, channels = _check_image_shape(image_shape)
    brightness, contrast, saturation, hue = check_jitter(jitter)
    layers = [
        RandomResizedCrop(height, width, scale=crop_scale),
        RandomHorizontalFlip(0.5),
        ColorJitter(
            brightness=brightness,
            contrast=contrast,
            saturation=saturation,
            hue=hue,
            probability=color_probability,
        ),
    ]
    if channels == 3:
        layers.append(RandomGrayscale(grayscale_probability))
    blur = RandomGaussianBlur(blur_kernel_size(min(height, width)), (0.1, 2.0), blur_probability)
    if blur.probability > 0:
        layers.append(blur)
    solarize = RandomSolarize(solarize_probability, threshold=0.5)
    if solarize.probability > 0:
        layers.append(solarize)
    return layers


def _check_view_pair(value, name, example):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(
            f"`{name}` must be a pair (view 1, view 2) of probabilities; received {value!r}. "
            f"Fix: pass e.g. {name}={example}."
        )
    return tuple(value)


def byol(
    image_shape,
    crop_scale=(0.08, 1.0),
    blur=True,
    blur_probabilities=(1.0, 0.1),
    solarize_probabilities=(0.0, 0.2),
    color_probability=0.8,
    grayscale_probability=0.2,
    jitter=BYOL_JITTER,
):
    """BYOL's asymmetric two-view augmentation (Grill et al. 2020, arXiv:2006.07733, app. B).

    Both views get a random resized crop back to ``(height, width)`` (area ``crop_scale``,
    aspect ratio 3/4 to 4/3), a horizontal flip with probability 0.5, colour jitter
    (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1, random order) with probability
    ``color_probability`` and grayscale with probability ``grayscale_probability`` (RGB only).
    The two views then differ: Gaussian blur (``sigma ~ U(0.1, 2.0)``, kernel 10% of the image
    side, :func:`blur_kernel_size`) with probability 1.0 on view 1 and 0.1 on view 2, and
    solarization (threshold 0.5) with probability 0.0 on view 1 and 0.2 on view 2.
    1-channel images get brightness/contrast jitter and no grayscale step.

    Args:
        image_shape: ``(height, width, channels)`` of the input and output views; channels 1 or 3.
        crop_scale: ``(min, max)`` area fraction of the random crop.
        blur: whether to blur at all; pass ``False`` for tiny images where even the smallest
            kernel (3 taps) removes too much detail. Unlike :func:`simclr`, BYOL's blur is part
            of the asymmetric recipe, so it is on by default at every image size.
        blur_probabilities: ``(view 1, view 2)`` blur probabilities (BYOL: ``(1.0, 0.1)``).
        solarize_probabilities: ``(view 1, view 2)`` solarization probabilities
            (BYOL: ``(0.0, 0.2)``).
        color_probability: chance that a view is colour-jittered (BYOL: 0.8).
        grayscale_probability: chance that an RGB view is turned gray (BYOL: 0.2).
        jitter: ``(brightness, contrast, saturation, hue)`` strengths of the colour jitter
            (BYOL: ``(0.4, 0.4, 0.2, 0.1)``; 1-channel images use the first two).

    Returns:
        A :class:`MultiViewAugmenter` with two different pipelines (view 1, view 2).

    Raises:
        ValueError: for a bad ``image_shape``, probability pair, ``blur`` or ``jitter``.

    Warns:
        UserWarning: when the smallest crop keeps fewer than :data:`MIN_VIEW_SIDE` pixels of
            the image's side (see :func:`simclr`).
    """
    blur_probabilities = _check_view_pair(blur_probabilities, "blur_probabilities", (1.0, 0.1))
    solarize_probabilities = _check_view_pair(
        solarize_probabilities, "solarize_probabilities", (0.0, 0.2)
    )
    if not isinstance(blur, bool):
        raise ValueError(
            f"`blur` must be True or False; received {blur!r}. Fix: pass blur=False to turn "
            "blur off for tiny images, or blur=True (BYOL)."
        )
    pipelines = [
        byol_pipeline(
            image_shape,
            crop_scale=crop_scale,
            blur_probability=blur_probabilities[view] if blur else 0.0,
            solarize_probability=solarize_probabilities[view],
            color_probability=color_probability,
            grayscale_probability=grayscale_probability,
            jitter=jitter,
        )
        for view in range(2)
    ]
    augmenter = MultiViewAugmenter(pipelines)
    warn_small_crops("byol", image_shape, crop_scale)
    return augmenter


def crop_flip(image_shape, crop_scale=(0.5, 1.0), flip=True, num_views=1):
    """Light geometric augmentation: a random resized crop and a horizontal flip per view.

    For methods whose task makes its own inputs (rotation, patch location, jigsaw, CPC,
    reconstruction): they need varied images, not two strongly distorted views.

    Args:
        image_shape: ``(height, width, channels)`` of the input and output views; channels 1 or 3.
        crop_scale: ``(min, max)`` area fraction of the random crop; ``(1.0, 1.0)`` keeps the image.
        flip: add a horizontal flip with probability 0.5.
        num_views: number of views, each with its own random draws.

    Returns:
        A :class:`MultiViewAugmenter` producing ``num_views`` views.
    """
    height, width, _ = _check_image_shape(image_shape)
    check_int(num_views, "num_views", fix="pass num_views=1.")

    def pipeline():
        layers = [RandomResizedCrop(height, width, scale=crop_scale)]
        if flip:
            layers.append(RandomHorizontalFlip(0.5))
        return layers

    return MultiViewAugmenter([pipeline() for _ in range(num_views)])


def moco_v1(image_shape, crop_scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.4)):
    """MoCo v1's two-view augmentation (He et al. 2020, arXiv:1911.05722, Sec. 4).

    A random resized crop (area ``crop_scale``, MoCo: 0.2-1), grayscale with probability 0.2,
    colour jitter (MoCo: 0.4 of brightness, contrast, saturation and hue) on every image and a
    horizontal flip.

    Args:
        image_shape: ``(height, width, channels)`` of the images; channels 1 or 3.
        crop_scale: ``(min, max)`` area fraction of the random crop.
        jitter: ``(brightness, contrast, saturation, hue)`` jitter strengths (1-channel images
            use the first two).

    Returns:
        A :class:`MultiViewAugmenter` producing two views.

    Raises:
        ValueError: for a bad ``image_shape``, ``crop_scale`` or ``jitter``.

    Warns:
        UserWarning: for crops below :data:`MIN_VIEW_SIDE` pixels (see :func:`simclr`).
    """
    crop = simclr_pipeline(image_shape, blur=False)[0]  # validates image_shape, sizes the crop
    brightness, contrast, saturation, hue = check_jitter(jitter)

    def pipeline():
        return [
            RandomResizedCrop(crop.height, crop.width, scale=crop_scale),
            RandomGrayscale(0.2),
            ColorJitter(brightness, contrast, saturation, hue, probability=1.0),
            RandomHorizontalFlip(0.5),
        ]

    augmenter = MultiViewAugmenter([pipeline(), pipeline()])
    warn_small_crops("moco_v1", image_shape, crop_scale)
    return augmenter


def moco_v2(image_shape, crop_scale=(0.2, 1.0), color_strength=0.5, blur=True):
    """MoCo v2's "aug+" (Chen et al. 2020, arXiv:2003.04297): SimCLR's recipe with crop area
    0.2-1, colour jitter (0.4, 0.4, 0.4, 0.1) with probability 0.8, grayscale 0.2 and Gaussian
    blur (``sigma ~ U(0.1, 2)``, probability 0.5), i.e. ``simclr(image_shape, crop_scale=(0.2,
    1.0), color_strength=0.5, blur=True)``.

    Args:
        image_shape: ``(height, width, channels)`` of the images; channels 1 or 3.
        crop_scale: ``(min, max)`` area fraction of the random crop (MoCo v2: 0.2-1).
        color_strength: SimCLR's colour strength ``s`` (MoCo v2: 0.5).
        blur: whether to blur (MoCo v2: True); ``None`` blurs images of at least 64 px.

    Returns:
        A :class:`MultiViewAugmenter` producing two views.

    Raises:
        ValueError: for a bad ``image_shape``, ``crop_scale`` or ``color_strength``.

    Warns:
        UserWarning: for crops below :data:`MIN_VIEW_SIDE` pixels (see :func:`simclr`).
    """
    arguments = dict(
        image_shape=image_shape, crop_scale=crop_scale, color_strength=color_strength, blur=blur
    )
    return _simclr_views("moco_v2", arguments)


def identity(image_shape, num_views=1):
    """No augmentation: ``num_views`` copies of the images (reconstruction methods, baselines).

    Args:
        image_shape: ``(height, width, channels)`` of the images; channels 1 or 3.
        num_views: number of (identical) views.

    Returns:
        A :class:`MultiViewAugmenter` whose views are the input images.
    """
    _check_image_shape(image_shape)
    return MultiViewAugmenter([], num_views=num_views)


# --------------------------------------------------------------- defaults adapted to the input
PAPER_MIN_SIDE = 96
"""Images at least this many pixels on their short side are "ImageNet-sized": RGB ones get
the papers' ImageNet recipe (e.g. SimCLR's colour strength 1.0) as a method's default."""

MIN_CROP_SIDE = 20
"""A method's default random crops keep at least this many pixels of the input's short side
(area fraction at least ``(MIN_CROP_SIDE / side) ** 2``): the papers' 8% crops of a 224-px
image are 63 px wide, of a 28-px image 8 px, too little of a small image to recognise."""

GRAY_JITTER = 0.8
"""Brightness and contrast jitter of a method's default for 1-channel images (SimCLR's
strength s = 1): intensity is the only photometric change such images have, and without it
two views are matched by their intensity histogram rather than their content."""

#: Presets whose arguments :func:`adapt_to_image` adapts (the others are used as given).
ADAPTIVE_PRESETS = ("simclr", "byol", "moco_v1", "moco_v2", "multicrop")


def min_crop_area(image_shape):
    """Smallest crop area fraction of a method's default for ``image_shape``:
    ``min(1, (MIN_CROP_SIDE / short side) ** 2)`` (0.51 at 28 px, 0.39 at 32 px, 0.1 at 64 px,
    below every paper's value from 71 px on).

    Args:
        image_shape: ``(height, width, channels)``; channels 1 or 3.

    Returns:
        A float in ``(0, 1]``.

    Raises:
        ValueError: for a bad ``image_shape``.
    """
    height, width, _ = _check_image_shape(image_shape)
    return min(1.0, (MIN_CROP_SIDE / min(height, width)) ** 2)


def raise_crop_scale(scale, floor, name="crop_scale"):
    """``scale = (min, max)`` with ``min`` raised to at least ``floor`` (and ``max`` to at
    least the new ``min``).

    Raises:
        ValueError: if ``scale`` is not a pair of numbers.
    """
    try:
        low, high = scale
        low, high = float(low), float(high)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` must be a (min, max) pair of area fractions; received {scale!r}. "
            f"Fix: pass e.g. {name}=(0.5, 1.0)."
        ) from error
    low = max(low, floor)
    return (low, max(low, high))


def adapt_to_image(preset, image_shape, **kwargs):
    """The arguments a method's default augmentation passes to ``PRESETS[preset]`` for images
    of ``image_shape``: the paper's recipe, with its size- and channel-dependent strengths
    adapted to the input.

    ``kwargs`` are the method's own preset arguments (its paper's values, e.g. SwAV's crop
    scales); they are kept, except that crop scales are read as values for ImageNet-sized
    images and raised to the size rule. The rules, for a short side ``S``:

    - crops: the minimum area becomes ``max(paper, (MIN_CROP_SIDE / S) ** 2)``
      (:func:`min_crop_area`), so crops keep at least 20 px of the side; from 71 px on
      (SimCLR, BYOL) or 45 px (MoCo's 0.2) this is the paper's value;
    - colour: 1-channel images get brightness and contrast jitter ``GRAY_JITTER`` (0.8, i.e.
      SimCLR's s = 1; there is no saturation or hue); RGB images get the paper's jitter, with
      SimCLR's ImageNet strength s = 1.0 from ``PAPER_MIN_SIDE`` (96 px) on and its CIFAR-10
      strength 0.5 below;
    - blur: only from ``BLUR_MIN_SIDE`` (64 px) on, for every preset (BYOL and MoCo v2 blur
      at every size when called directly);
    - multi-crop: global crops as above; local crops cover at least their own output size
      (no magnification: ``local_scale`` min ``>= (local side / S) ** 2``) and reach up to the
      smallest global crop (``local_scale`` max ``>=`` global min); see
      :func:`keras_ssl.augment.multicrop.multicrop` for the warning when local views are too
      small to learn from.

    Presets other than :data:`ADAPTIVE_PRESETS` get ``kwargs`` unchanged.

    Args:
        preset: a name in ``keras_ssl.augment.PRESETS``.
        image_shape: ``(height, width, channels)`` of the images; channels 1 or 3.
        **kwargs: the method's preset arguments.

    Returns:
        A dict of keyword arguments for ``PRESETS[preset](image_shape, **result)``.

    Raises:
        ValueError: for a bad ``image_shape`` or crop scale.
    """
    height, width, channels = _check_image_shape(image_shape)
    side = min(height, width)
    gray = channels == 1
    floor = min_crop_area(image_shape)
    result = dict(kwargs)
    if preset not in ADAPTIVE_PRESETS:
        return result
    blur = side >= BLUR_MIN_SIDE
    if preset == "multicrop":
        from keras_ssl.augment.multicrop import adapt_multicrop

        return adapt_multicrop(image_shape, **result)
    paper_crop = {"simclr": (0.08, 1.0), "byol": (0.08, 1.0)}.get(preset, (0.2, 1.0))
    result["crop_scale"] = raise_crop_scale(result.get("crop_scale", paper_crop), floor)
    if preset in ("simclr", "moco_v2"):
        rgb_strength = 1.0 if preset == "simclr" and side >= PAPER_MIN_SIDE else 0.5
        result.setdefault("color_strength", GRAY_JITTER / 0.8 if gray else rgb_strength)
        if preset == "moco_v2":
            result.setdefault("blur", blur)
    elif preset == "byol":
        result.setdefault("blur", blur)
        result.setdefault("jitter", gray_jitter() if gray else BYOL_JITTER)
    else:  # moco_v1
        result.setdefault("jitter", gray_jitter() if gray else (0.4, 0.4, 0.4, 0.4))
    return result


def gray_jitter():
    """The ``jitter`` tuple of a method's default for 1-channel images:
    ``(GRAY_JITTER, GRAY_JITTER, 0, 0)``."""
    return (GRAY_JITTER, GRAY_JITTER, 0.0, 0.0)


def default_augmenter(preset, image_shape, **kwargs):
    """A method's default augmentation: ``PRESETS[preset](image_shape, **adapt_to_image(preset,
    image_shape, **kwargs))`` (what ``SSLMethod`` uses when no ``augmenter`` is given).

    Args:
        preset: a name in ``keras_ssl.augment.PRESETS``.
        image_shape: ``(height, width, channels)`` of the encoder's input.
        **kwargs: the method's preset arguments (``SSLMethod.default_preset_kwargs``).

    Returns:
        A :class:`MultiViewAugmenter`.

    Raises:
        ValueError: for an unknown preset (the message lists the known ones) or bad arguments.
    """
    from keras_ssl.augment import PRESETS

    if preset not in PRESETS:
        raise ValueError(
            f"Unknown augmentation preset {preset!r}; expected one of {sorted(PRESETS)}. Fix: "
            "set the method's default_preset to one of them, or pass augmenter=..."
        )
    return PRESETS[preset](image_shape, **adapt_to_image(preset, image_shape, **kwargs))
