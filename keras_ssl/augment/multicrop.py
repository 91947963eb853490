"""Multi-crop augmentation (SwAV, DINO): two global crops and several small local crops.

Multi-crop (Caron et al. 2020, arXiv:2006.09882) adds ``num_local`` low-resolution crops of
small regions to the two usual views; DINO (Caron et al. 2021, arXiv:2104.14294, appendix D /
its ``DataAugmentationDINO``) uses 2 global crops of 224 px covering 40-100% of the image and
local crops of 96 px covering 5-40%, with BYOL's colour and blur recipe. The views have
different sizes: global crops are ``global_size``, local crops ``local_size`` (smaller, so they
are cheap to encode). Methods feed the local crops to the student at their own size (see
``keras_ssl.methods.DINO``); passing ``local_size=global_size`` instead resizes them to the
global size (works with any fixed-size encoder, at a higher cost).
"""

import warnings

from keras_ssl.augment.blur import RandomGaussianBlur
from keras_ssl.augment.color import ColorJitter, RandomGrayscale
from keras_ssl.augment.crop import RandomResizedCrop
from keras_ssl.augment.flip import RandomHorizontalFlip
from keras_ssl.augment.multi_view import MultiViewAugmenter
from keras_ssl.augment.presets import (
    BLUR_MIN_SIDE,
    BYOL_JITTER,
    MIN_VIEW_SIDE,
    _check_image_shape,
    blur_kernel_size,
    check_jitter,
    gray_jitter,
    min_crop_area,
    raise_crop_scale,
    warn_small_crops,
)
from keras_ssl.augment.solarize import RandomSolarize
from keras_ssl.validation import check_int

#: DINO's local-to-global side ratio (96 / 224 pixels).
LOCAL_TO_GLOBAL = 96 / 224

MIN_LOCAL_CROP_SIDE = 12
"""A method's default local crops keep at least this many pixels of the input's short side
(DINO's 5% crops of a 224-px image are 50 px wide, of a 28-px image 6 px)."""


def _size_pair(value, name):
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        height, width = pair
        valid = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"`{name}` must be a positive int or a (height, width) pair of positive ints; "
            f"received {value!r}. Fix: pass e.g. {name}=12, or None for the default."
        )
    return int(height), int(width)


def multicrop_pipeline(
    image_shape,
    size,
    scale,
    blur_probability=0.5,
    solarize_probability=0.0,
    blur=None,
    color_probability=0.8,
    grayscale_probability=0.2,
    jitter=BYOL_JITTER,
):
    """The layers of one multi-crop view (DINO's recipe); see :func:`multicrop`.

    Args:
        image_shape: ``(height, width, channels)`` of the input images.
        size: ``(height, width)`` of this view.
        scale: ``(min, max)`` area fraction of the random crop.
        blur_probability: chance of a Gaussian blur (DINO: 1.0 for the first global crop, 0.1
            for the second, 0.5 for local crops); only used when blurring is on.
        solarize_probability: chance of solarization (DINO: 0.2 for the second global crop).
        blur: whether to blur; ``None`` blurs when the input's short side is at least 64 px.
        color_probability: chance of colour jitter.
        grayscale_probability: chance of grayscale (RGB only).
        jitter: ``(brightness, contrast, saturation, hue)`` colour jitter strengths (DINO:
            ``(0.4, 0.4, 0.2, 0.1)``; 1-channel images use the first two).

    Returns:
        A list of keras_ssl augmentation layers, applied in order.
    """
    height, width, channels = _check_image_shape(image_shape)
    if blur is None:
        blur = min(height, width) >= BLUR_MIN_SIDE
    layers = [
        RandomResizedCrop(size[0], size[1], scale=scale),
        RandomHorizontalFlip(0.5),
        ColorJitter(*check_jitter(jitter), probability=color_probability),
    ]
    if channels == 3:
        layers.append(RandomGrayscale(grayscale_probability))
    if blur:
        kernel = min(blur_kernel_size(min(size)), 2 * min(size) - 1)
        layers.append(RandomGaussianBlur(kernel, (0.1, 2.0), blur_probability))
    if solarize_probability:
        layers.append(RandomSolarize(solarize_probability))
    return layers


def multicrop(
    image_shape,
    global_size=None,
    local_size=None,
    num_local=8,
    global_scale=(0.4, 1.0),
    local_scale=(0.05, 0.4),
    blur=None,
    color_probability=0.8,
    grayscale_probability=0.2,
    solarize_probability=0.2,
    jitter=BYOL_JITTER,
):
    """DINO's multi-crop augmentation: 2 global views, then ``num_local`` local views.

    Every view is a random resized crop followed by a horizontal flip (p = 0.5), colour jitter
    (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1, random order) with probability
    ``color_probability`` and grayscale with probability ``grayscale_probability`` (RGB only).
    When blurring, the first global view is always blurred, the second with probability 0.1 and
    local views with 0.5 (``sigma ~ U(0.1, 2)``, kernel 10% of the view side); the second global
    view is solarized with probability ``solarize_probability``. 1-channel images get
    brightness/contrast jitter only.

    Args:
        image_shape: ``(height, width, channels)`` of the input images; channels 1 or 3.
        global_size: side (or ``(height, width)``) of the global views; ``None`` keeps the image
            size, which must be the encoder's input size.
        local_size: side (or ``(height, width)``) of the local views; ``None`` uses DINO's
            96/224 of the global size (12 px for 28 px images). With a ViT encoder it must be a
            multiple of the patch size. Equal to ``global_size``, local crops are resized to the
            encoder's input (works with any encoder, costs more).
        num_local: number of local views (DINO: 8 in its code, 6 or 10 in the paper's tables;
            0 gives plain two-view augmentation).
        global_scale: ``(min, max)`` area fraction of global crops (DINO: 0.4-1).
        local_scale: ``(min, max)`` area fraction of local crops (DINO: 0.05-0.4).
        blur: whether to blur; ``None`` blurs images whose short side is at least 64 px.
        color_probability: chance that a view is colour-jittered (DINO: 0.8).
        grayscale_probability: chance that an RGB view turns gray (DINO: 0.2).
        solarize_probability: chance that the second global view is solarized (DINO: 0.2).
        jitter: ``(brightness, contrast, saturation, hue)`` colour jitter strengths (DINO:
            ``(0.4, 0.4, 0.2, 0.1)``; 1-channel images use the first two).

    Returns:
        A :class:`MultiViewAugmenter` with ``2 + num_local`` views, global views first.

    Raises:
        ValueError: for a bad ``image_shape``, size, ``num_local`` or ``jitter``.

    Warns:
        UserWarning: when global or local crops keep fewer than ``presets.MIN_VIEW_SIDE``
            (8) pixels of the image's side, or local views are smaller than 8 px; the message
            names the values a method's default uses at this size (DINO's 5% local crops of a
            28-px image are 6 px wide).
    """
    height, width, _ = _check_image_shape(image_shape)
    global_size = (height, width) if global_size is None else _size_pair(global_size, "global_size")
    if local_size is None:
        local_size = tuple(max(1, round(side * LOCAL_TO_GLOBAL)) for side in global_size)
    else:
        local_size = _size_pair(local_size, "local_size")
    fix = "pass e.g. num_local=8 (DINO) or 0 for two global views only."
    check_int(num_local, "num_local", minimum=0, fix=fix)
    common = dict(
        image_shape=image_shape,
        blur=blur,
        color_probability=color_probability,
        grayscale_probability=grayscale_probability,
        jitter=check_jitter(jitter),
    )
    _warn_small_views(image_shape, global_scale, local_scale, local_size, num_local)
    views = [
        multicrop_pipeline(size=global_size, scale=global_scale, blur_probability=1.0, **common),
        multicrop_pipeline(
            size=global_size,
            scale=global_scale,
            blur_probability=0.1,
            solarize_probability=solarize_probability,
            **common,
        ),
    ]
    for _ in range(num_local):
        views.append(
            multicrop_pipeline(size=local_size, scale=local_scale, blur_probability=0.5, **common)
        )
    return MultiViewAugmenter(views)


def adapt_multicrop(image_shape, **kwargs):
    """The :func:`multicrop` arguments of a method's default for ``image_shape`` (see
    :func:`keras_ssl.augment.presets.adapt_to_image`).

    Global crops keep at least ``presets.MIN_CROP_SIDE`` (20) px of the short side ``S``
    (``global_scale`` min raised to ``(20 / S) ** 2``), local crops at least
    ``MIN_LOCAL_CROP_SIDE`` (12) px (``local_scale`` min raised to ``(12 / S) ** 2``), and
    local crops reach up to the smallest global crop (``local_scale`` max raised to the
    global min). 1-channel images get brightness and contrast jitter
    ``presets.GRAY_JITTER``. At 224 px this is DINO's recipe unchanged; at 28 px global crops
    cover 51-100% and local crops 18-51% of the image.

    Args:
        image_shape: ``(height, width, channels)`` of the input images; channels 1 or 3.
        **kwargs: the method's :func:`multicrop` arguments (its paper's values).

    Returns:
        A dict of keyword arguments for ``multicrop(image_shape, **result)``.

    Raises:
        ValueError: for a bad ``image_shape`` or crop scale.
    """
    height, width, channels = _check_image_shape(image_shape)
    side = min(height, width)
    result = dict(kwargs)
    global_scale = raise_crop_scale(
        result.get("global_scale", (0.4, 1.0)), min_crop_area(image_shape), "global_scale"
    )
    local_floor = min(1.0, (MIN_LOCAL_CROP_SIDE / side) ** 2)
    low, high = raise_crop_scale(result.get("local_scale", (0.05, 0.4)), local_floor, "local_scale")
    result["global_scale"] = global_scale
    result["local_scale"] = (low, max(high, global_scale[0]))
    if channels == 1:
        result.setdefault("jitter", gray_jitter())
    return result


def _warn_small_views(image_shape, global_scale, local_scale, local_size, num_local):
    """Warns once per call when global or local crops, or the local views themselves, are
    smaller than ``presets.MIN_VIEW_SIDE`` pixels (see :func:`multicrop`)."""
    adapted = adapt_multicrop(image_shape)
    warn_small_crops(
        "multicrop",
        image_shape,
        global_scale,
        "global_scale",
        fix="global_scale=({:.2f}, 1.0)".format(adapted["global_scale"][0]),
        stacklevel=4,
    )
    if not num_local:
        return
    warn_small_crops(
        "multicrop",
        image_shape,
        local_scale,
        "local_scale",
        fix="local_scale=({:.2f}, {:.2f})".format(*adapted["local_scale"]),
        stacklevel=4,
    )
    if min(local_size) < MIN_VIEW_SIDE:
        warnings.warn(
            f"multicrop: local views of {local_size[0]}x{local_size[1]} px are smaller than "
            f"{MIN_VIEW_SIDE} px; an encoder that downsamples 4x sees 1-2 positions of them. "
            f"Fix: pass local_size={MIN_VIEW_SIDE} or more (local_size equal to the global size "
            "resizes local crops to it), or num_local=0 for two global views only.",
            UserWarning,
            stacklevel=3,
        )
