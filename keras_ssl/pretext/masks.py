"""Context-encoder masks (Pathak et al. 2016, https://arxiv.org/abs/1604.07379, section 3.3).

Every function returns ``B`` of shape ``[batch, H, W, 1]`` (float32) with 1 for a kept pixel and
0 for a dropped one, so the context is ``B * x`` and the region to fill is ``1 - B``:

- :func:`central_square`: the central square (half the side, a quarter of the area);
- :func:`random_blocks`: square blocks at random positions, possibly overlapping, added until
  they cover about a quarter of the image;
- :func:`random_regions`: arbitrary shapes taken from a mask source (the paper uses PASCAL VOC
  segmentation masks), randomly chosen, flipped and shifted per image.

:func:`overlap_border` gives the ring of context around the dropped region that the context
encoder also predicts (and weights 10x in its reconstruction loss); :func:`central_box` the
static rectangle of the central hole grown by that border; :func:`predicted_region` the part of
an image the context encoder predicts and its discriminator judges.

Random masks are drawn with stateless ops from a ``[2]`` seed (identical under XLA).
"""

import numpy as np
import tensorflow as tf

from keras_ssl.augment.seeds import resolve_seed
from keras_ssl.pretext.noise import uniform
from keras_ssl.validation import check_in_range, check_int, check_int_tuple

#: Names accepted by :func:`make_masks`.
MASK_TYPES = ("central", "random_blocks", "random_region")


def _check_shape(image_shape):
    form = "(height, width) or (height, width, channels)"
    shape = check_int_tuple(image_shape, "image_shape", form, (2, 3), "pass e.g. (28, 28, 1).")
    return shape[0], shape[1]


def _check_fraction(value, name, example):
    fix = f"pass e.g. {name}={example}."
    check_in_range(value, name, 0, 1, fix, low_open=True, high_open=True)


def central_square(batch_size, image_shape, size=0.5):
    """The central-region mask: a centred square of side ``size * H`` by ``size * W`` dropped.

    Args:
        batch_size: number of masks.
        image_shape: ``(H, W[, C])``.
        size: side of the square as a fraction of the image side (0.5: a quarter of the area).

    Returns:
        float32 ``[batch_size, H, W, 1]``, 1 = kept.
    """
    height, width = _check_shape(image_shape)
    top, left, hole_h, hole_w = central_box(image_shape, size)
    mask = np.ones((height, width, 1), np.float32)
    mask[top : top + hole_h, left : left + hole_w] = 0
    return tf.tile(tf.constant(mask)[None], tf.stack([batch_size, 1, 1, 1]))


def central_box(image_shape, size=0.5, margin=0):
    """The rectangle of :func:`central_square`'s hole grown by ``margin`` pixels on every side
    and clipped to the image.

    Args:
        image_shape: ``(H, W[, C])``.
        size: side of the hole as a fraction of the image side.
        margin: int >= 0, pixels added on each side (the overlap border).

    Returns:
        Python ints ``(top, left, height, width)``.
    """
    height, width = _check_shape(image_shape)
    _check_fraction(size, "size", 0.5)
    check_overlap(margin, "margin")
    hole_h, hole_w = max(1, round(height * size)), max(1, round(width * size))
    top, left = (height - hole_h) // 2, (width - hole_w) // 2
    bottom, right = min(height, top + hole_h + margin), min(width, left + hole_w + margin)
    top, left = max(0, top - margin), max(0, left - margin)
    return top, left, bottom - top, right - left


def overlap_border(masks, width):
    """The context pixels within ``width`` pixels of the dropped region (Chebyshev distance:
    the hole dilated by a ``(2 * width + 1)``-square, minus the hole).

    Pathak et al. predict a slightly larger region than the hole, overlapping the context, and
    weight the reconstruction loss 10x there (released code: ``overlapPred=4``, 4 pixels).

    Args:
        masks: ``B`` ``[batch, H, W, 1]``, 1 = kept, 0 = dropped.
        width: int >= 0, the border's width in pixels (0: no border).

    Returns:
        float32 ``[batch, H, W, 1]``, 1 = border pixel (kept, but predicted too).
    """
    check_overlap(width, "width")
    holes = 1.0 - tf.cast(masks, tf.float32)
    if width == 0:
        return tf.zeros_like(holes)
    grown = tf.nn.max_pool2d(holes, 2 * width + 1, strides=1, padding="SAME")
    return grown - holes


def predicted_region(images, masks, kind, overlap):
    """The region of ``images`` (real or predicted) that the context encoder predicts: the
    hole plus its ``overlap`` border.

    For ``"central"`` masks this is the static crop :func:`central_box` with
    ``margin=overlap`` (as ``netD`` sees the 64x64 centre in the released ``train.lua``); for
    random masks, whose region changes per image, the whole image with every pixel outside the
    hole and its border set to 0 (the same region for real and predicted images, so its shape
    tells a discriminator nothing).

    Args:
        images: ``[batch, H, W, C]`` with a static ``H, W``.
        masks: ``B`` ``[batch, H, W, 1]`` of kind ``kind``, 1 = kept, 0 = dropped.
        kind: one of :data:`MASK_TYPES`.
        overlap: int >= 0, the border's width in pixels.

    Returns:
        float32 ``[batch, h, w, C]`` (:func:`region_shape`).
    """
    images = tf.cast(images, tf.float32)
    if kind == "central":
        top, left, height, width = central_box(tuple(images.shape[1:3]), margin=overlap)
        return images[:, top : top + height, left : left + width]
    holes = 1.0 - tf.cast(masks, tf.float32)
    return images * (holes + overlap_border(masks, overlap))


def region_shape(kind, image_shape, overlap):
    """Shape ``(h, w, C)`` of :func:`predicted_region` for images of shape ``(H, W, C)``."""
    if kind == "central":
        _, _, height, width = central_box(image_shape, margin=overlap)
        return (height, width, image_shape[-1])
    return tuple(image_shape)


def check_overlap(value, name="overlap"):
    """Raises a ``ValueError`` unless ``value`` is an int >= 0 (a border width in pixels)."""
    check_int(
        value,
        name,
        0,
        "pass a border width in pixels, e.g. 4 (the released context encoder's overlapPred), "
        "or 0 for no border.",
    )


def random_blocks(
    batch_size, image_shape, seed=None, coverage=0.25, block_size=0.25, max_blocks=16
):
    """Random-block masks: square blocks of side ``block_size * H`` at uniform positions are
    added (they may overlap) while less than ``coverage`` of the image is dropped.

    Each image ends with a dropped area in ``[coverage, coverage + block area)`` unless
    ``max_blocks`` blocks were not enough (only possible when blocks overlap a lot).

    Args:
        batch_size: number of masks.
        image_shape: ``(H, W[, C])``.
        seed: int tensor ``[2]``; ``None`` draws a fresh one.
        coverage: the dropped fraction to reach (the paper: 1/4).
        block_size: block side as a fraction of the image side.
        max_blocks: the most blocks per image.

    Returns:
        float32 ``[batch_size, H, W, 1]``, 1 = kept.
    """
    height, width = _check_shape(image_shape)
    _check_fraction(coverage, "coverage", 0.25)
    _check_fraction(block_size, "block_size", 0.25)
    seed = resolve_seed(seed)
    side_h, side_w = max(1, round(height * block_size)), max(1, round(width * block_size))
    draws = uniform(tf.stack([batch_size, max_blocks, 2]), seed)
    tops = tf.cast(draws[..., 0] * (height - side_h + 1), tf.int32)  # [batch, blocks]
    lefts = tf.cast(draws[..., 1] * (width - side_w + 1), tf.int32)
    rows = tf.range(height)[None, :]
    columns = tf.range(width)[None, :]
    dropped = tf.zeros(tf.stack([batch_size, height, width]), tf.bool)
    for block in range(max_blocks):
        top, left = tops[:, block : block + 1], lefts[:, block : block + 1]
        in_rows = (rows >= top) & (rows < top + side_h)  # [batch, H]
        in_columns = (columns >= left) & (columns < left + side_w)  # [batch, W]
        square = in_rows[:, :, None] & in_columns[:, None, :]
        covered = tf.reduce_mean(tf.cast(dropped, tf.float32), axis=[1, 2])
        dropped = tf.where((covered < coverage)[:, None, None], dropped | square, dropped)
    return 1.0 - tf.cast(dropped, tf.float32)[..., None]


def random_regions(batch_size, source, seed=None):
    """Random-region masks: a mask of ``source`` per image, randomly flipped left-right and
    cyclically shifted.

    Args:
        batch_size: number of masks.
        source: ``[M, H, W]`` or ``[M, H, W, 1]`` region masks, 1 (or True) = region to drop
            (e.g. object segmentations); see :func:`blob_regions` for a synthetic source.
        seed: int tensor ``[2]``; ``None`` draws a fresh one.

    Returns:
        float32 ``[batch_size, H, W, 1]``, 1 = kept.
    """
    source = tf.convert_to_tensor(source)
    if source.shape.rank == 4 and source.shape[-1] == 1:
        source = source[..., 0]
    if source.shape.rank != 3 or not source.shape[0]:
        raise ValueError(
            f"`source` must hold region masks [M, H, W] or [M, H, W, 1] with M >= 1; received "
            f"shape {tuple(source.shape)}. Fix: stack binary masks (1 = region to drop)."
        )
    count, height, width = source.shape
    seed = resolve_seed(seed)
    draws = uniform(tf.stack([batch_size, 4]), seed)
    index = tf.minimum(tf.cast(draws[:, 0] * count, tf.int32), count - 1)
    regions = tf.gather(tf.cast(source, tf.float32) > 0.5, index)  # [batch, H, W]
    regions = tf.where((draws[:, 1] < 0.5)[:, None, None], regions[:, :, ::-1], regions)
    shift_y = tf.cast(draws[:, 2] * height, tf.int32)
    shift_x = tf.cast(draws[:, 3] * width, tf.int32)
    rows = (tf.range(height)[None, :] - shift_y[:, None]) % height  # [batch, H]
    columns = (tf.range(width)[None, :] - shift_x[:, None]) % width
    regions = tf.gather(regions, rows, axis=1, batch_dims=1)
    regions = tf.gather(regions, columns, axis=2, batch_dims=1)
    return 1.0 - tf.cast(regions, tf.float32)[..., None]


def blob_regions(image_shape, count=64, seed=0, coverage=(0.1, 0.35)):
    """A synthetic mask source: ``count`` irregular blobs (unions of 1-4 random ellipses).

    A stand-in for segmentation masks when none are at hand; each blob covers a fraction of
    the image within ``coverage`` where possible.

    Args:
        image_shape: ``(H, W[, C])``.
        count: number of masks.
        seed: NumPy seed.
        coverage: ``(min, max)`` target area fraction of a blob.

    Returns:
        uint8 NumPy array ``[count, H, W]``, 1 = region to drop.
    """
    height, width = _check_shape(image_shape)
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    masks = np.zeros((count, height, width), np.uint8)
    for index in range(count):
        target = rng.uniform(*coverage)
        blob = np.zeros((height, width), bool)
        for _ in range(rng.integers(1, 5)):
            centre_y, centre_x = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * width
            scale = np.sqrt(target / np.pi) * rng.uniform(0.6, 1.2)
            radius_y, radius_x = scale * height * rng.uniform(0.7, 1.4), scale * width
            blob |= ((ys - centre_y) / radius_y) ** 2 + ((xs - centre_x) / radius_x) ** 2 <= 1
            if blob.mean() >= target:
                break
        masks[index] = blob
    return masks


def make_masks(kind, batch_size, image_shape, seed=None, source=None):
    """Masks of the named kind (see the module docstring).

    Args:
        kind: one of :data:`MASK_TYPES`.
        batch_size: number of masks.
        image_shape: ``(H, W[, C])``.
        seed: int tensor ``[2]`` (random kinds); ``None`` draws a fresh one.
        source: region masks for ``"random_region"``; ``None`` uses :func:`blob_regions`.

    Returns:
        float32 ``[batch_size, H, W, 1]``, 1 = kept.
    """
    check_mask_kind(kind)
    if kind == "central":
        return central_square(batch_size, image_shape)
    if kind == "random_blocks":
        return random_blocks(batch_size, image_shape, seed)
    return random_regions(batch_size, blob_regions(image_shape) if source is None else source, seed)


def region_source(kind, region_masks, image_shape):
    """The mask source :func:`make_masks` takes for masks of ``kind`` on images of
    ``image_shape``: for ``"random_region"`` the ``region_masks`` checked, or
    :func:`blob_regions` when ``None``; for the other kinds ``None``.

    Args:
        kind: one of :data:`MASK_TYPES`.
        region_masks: ``[M, H, W]`` or ``[M, H, W, 1]`` with 1 = region to drop (e.g.
            segmentation masks), or ``None``.
        image_shape: ``(H, W[, C])``.

    Returns:
        uint8 NumPy array ``[M, H, W]``, or ``None``.
    """
    if kind != "random_region":
        return None
    if region_masks is None:
        return blob_regions(image_shape)
    source = np.asarray(region_masks)
    if source.ndim == 4 and source.shape[-1] == 1:
        source = source[..., 0]
    if source.ndim != 3 or source.shape[1:] != tuple(image_shape[:2]) or not len(source):
        raise ValueError(
            f"`region_masks` must be [M, {image_shape[0]}, {image_shape[1]}] "
            f"(1 = region to drop); received shape {source.shape}. Fix: resize the masks "
            "to the image size, or pass None for synthetic blob regions."
        )
    return source.astype(np.uint8)


def check_mask_kind(kind):
    """Raises a ``ValueError`` unless ``kind`` is one of :data:`MASK_TYPES`."""
    if kind not in MASK_TYPES:
        raise ValueError(
            f"`mask` must be one of {MASK_TYPES}; received {kind!r}. Fix: pass 'central' "
            "(Pathak et al.'s central region), 'random_blocks' or 'random_region'."
        )
