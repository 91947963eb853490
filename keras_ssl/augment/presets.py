"""Ready-made augmentation pipelines from the papers.

Each preset returns a :class:`MultiViewAugmenter`; the ``*_pipeline`` functions return the list
of layers for one view so that users can extend or mix them.
"""

from keras_ssl.augment.blur import RandomGaussianBlur
from keras_ssl.augment.color import ColorJitter, RandomGrayscale
from keras_ssl.augment.crop import RandomResizedCrop
from keras_ssl.augment.flip import RandomHorizontalFlip
from keras_ssl.augment.multi_view import MultiViewAugmenter
from keras_ssl.augment.solarize import RandomSolarize
from keras_ssl.validation import check_in_range, check_int

BLUR_MIN_SIDE = 64
"""Images at least this many pixels on their short side get Gaussian blur by default."""


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
    """
    arguments = dict(
        image_shape=image_shape,
        crop_scale=crop_scale,
        color_strength=color_strength,
        blur=blur,
        color_probability=color_probability,
        grayscale_probability=grayscale_probability,
    )
    return MultiViewAugmenter([simclr_pipeline(**arguments), simclr_pipeline(**arguments)])


def byol_pipeline(
    image_shape,
    crop_scale=(0.08, 1.0),
    blur_probability=1.0,
    solarize_probability=0.0,
    color_probability=0.8,
    grayscale_probability=0.2,
):
    """The layers of one BYOL view; see :func:`byol` for the arguments.

    ``blur_probability`` and ``solarize_probability`` are this view's own probabilities; a
    step whose probability is 0 is left out of the list.

    Returns:
        A list of keras_ssl augmentation layers, applied in order.
    """
    height, width, channels = _check_image_shape(image_shape)
    layers = [
        RandomResizedCrop(height, width, scale=crop_scale),
        RandomHorizontalFlip(0.5),
        ColorJitter(
            brightness=0.4,
            contrast=0.4,
            saturation=0.2,
            hue=0.1,
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

    Returns:
        A :class:`MultiViewAugmenter` with two different pipelines (view 1, view 2).
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
        )
        for view in range(2)
    ]
    return MultiViewAugmenter(pipelines)


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


def moco_v1(image_shape):
    """MoCo v1's two-view augmentation (He et al. 2020, arXiv:1911.05722, Sec. 4).

    A random resized crop (area 0.2-1), grayscale with probability 0.2 (RGB only), colour jitter
    0.4 of brightness, contrast, saturation and hue on every image and a horizontal flip.

    Args:
        image_shape: ``(height, width, channels)`` of the images; channels 1 or 3.

    Returns:
        A :class:`MultiViewAugmenter` producing two views.
    """
    crop = simclr_pipeline(image_shape, blur=False)[0]  # validates image_shape, sizes the crop

    def pipeline():
        return [
            RandomResizedCrop(crop.height, crop.width, scale=(0.2, 1.0)),
            RandomGrayscale(0.2),
            ColorJitter(0.4, 0.4, 0.4, 0.4, probability=1.0),
            RandomHorizontalFlip(0.5),
        ]

    return MultiViewAugmenter([pipeline(), pipeline()])


def moco_v2(image_shape):
    """MoCo v2's "aug+" (Chen et al. 2020, arXiv:2003.04297): SimCLR's recipe with crop area
    0.2-1, colour jitter (0.4, 0.4, 0.4, 0.1) with probability 0.8, grayscale 0.2 and Gaussian
    blur (``sigma ~ U(0.1, 2)``, probability 0.5), i.e. ``simclr(image_shape, crop_scale=(0.2,
    1.0), blur=True)``.

    Args:
        image_shape: ``(height, width, channels)`` of the images; channels 1 or 3.

    Returns:
        A :class:`MultiViewAugmenter` producing two views.
    """
    return simclr(image_shape, crop_scale=(0.2, 1.0), blur=True)


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
