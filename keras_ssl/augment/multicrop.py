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

from keras_ssl.augment.blur import RandomGaussianBlur
from keras_ssl.augment.color import ColorJitter, RandomGrayscale
from keras_ssl.augment.crop import RandomResizedCrop
from keras_ssl.augment.flip import RandomHorizontalFlip
from keras_ssl.augment.multi_view import MultiViewAugmenter
from keras_ssl.augment.presets import BLUR_MIN_SIDE, _check_image_shape, blur_kernel_size
from keras_ssl.augment.solarize import RandomSolarize
from keras_ssl.validation import check_int

#: DINO's local-to-global side ratio (96 / 224 pixels).
LOCAL_TO_GLOBAL = 96 / 224


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

    Returns:
        A list of keras_ssl augmentation layers, applied in order.
    """
    height, width, channels = _check_image_shape(image_shape)
    if blur is None:
        blur = min(height, width) >= BLUR_MIN_SIDE
    layers = [
        RandomResizedCrop(size[0], size[1], scale=scale),
        RandomHorizontalFlip(0.5),
        ColorJitter(0.4, 0.4, 0.2, 0.1, probability=color_probability),
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

    Returns:
        A :class:`MultiViewAugmenter` with ``2 + num_local`` views, global views first.
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
    )
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
