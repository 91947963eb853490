"""Relative patch location (Doersch et al. 2015, https://arxiv.org/abs/1505.05192): a centre patch
and one of its 8 neighbours in a 3x3 grid with gaps and jitter, labelled by the neighbour's place.

Labels number the neighbours in reading order around the centre (:data:`NEIGHBOURS`)::

    0 1 2
    3 . 4
    5 6 7
"""

import numpy as np
import tensorflow as tf

from keras_ssl.layers.patch_grid import _pair

#: ``(row, column)`` cell offset of each neighbour label, relative to the centre cell.
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def patch_pair_geometry(image_size, patch_size, gap, jitter):
    """Top-left pixel of the centre patch (before jitter) of a 3x3 grid centred in the image.

    Neighbouring cells are ``patch + gap`` apart and every patch moves by up to ``jitter``
    pixels along each axis, so the grid needs ``3 * patch + 2 * gap + 2 * jitter`` pixels (the
    paper: 96-px patches, 48-px gaps, up to 7 px of jitter).

    Args:
        image_size: ``(height, width)``.
        patch_size: ``(height, width)`` of a patch.
        gap: ``(height, width)`` of the gap between neighbouring cells.
        jitter: ``(height, width)`` largest shift of a patch.

    Returns:
        ``(top, left)`` of the un-jittered centre patch.

    Raises:
        ValueError: when the grid does not fit in the image.
    """
    centre = []
    for axis, name in enumerate(("height", "width")):
        size, patch, space, shift = image_size[axis], patch_size[axis], gap[axis], jitter[axis]
        needed = 3 * patch + 2 * space + 2 * shift
        if needed > size:
            raise ValueError(
                f"The 3x3 patch grid needs {needed} pixels along the {name} (3 * patch {patch} + "
                f"2 * gap {space} + 2 * jitter {shift}) but the images have {size}; received "
                f"patch_size={tuple(patch_size)}, gap={tuple(gap)}, jitter={tuple(jitter)} for "
                f"images {tuple(image_size)}. Expected 3 * patch + 2 * gap + 2 * jitter <= "
                f"{size}. Fix: use smaller patches, gaps or jitter."
            )
        centre.append((size - (3 * patch + 2 * space)) // 2 + patch + space)
    return tuple(centre)


def sample_patch_pairs(batch_size, seed, max_jitter):
    """Each image's own draws: a neighbour label and the shifts of its two patches.

    Stateless (philox): the same ``seed`` gives the same draws on every device and under XLA.

    Args:
        batch_size: number of images (int or scalar tensor).
        seed: int tensor ``[2]``.
        max_jitter: ``(height, width)`` largest shift.

    Returns:
        ``(labels, shifts)``: int32 ``[batch]`` uniform in ``[0, 8)``, and int32
        ``[batch, 2, 2]`` (patch: centre, neighbour; axis: row, column) uniform in
        ``[-jitter, jitter]``.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    labels = tf.random.stateless_uniform(
        [batch_size], seeds[0], 0, len(NEIGHBOURS), dtype=tf.int32, alg="philox"
    )
    shifts = [
        tf.random.stateless_uniform(
            [batch_size, 2], seeds[1 + axis], -limit, limit + 1, dtype=tf.int32, alg="philox"
        )
        for axis, limit in enumerate(max_jitter)
    ]
    return labels, tf.stack(shifts, axis=-1)


def _crop(images, corners, patch_size):
    rows = corners[:, 0:1] + tf.range(patch_size[0])  # [b, ph]
    cols = corners[:, 1:2] + tf.range(patch_size[1])  # [b, pw]
    strips = tf.gather(images, rows, axis=1, batch_dims=1)  # [b, ph, W, C]
    return tf.gather(strips, cols, axis=2, batch_dims=1)  # [b, ph, pw, C]


def cut_patch_pairs(images, labels, shifts, patch_size, gap):
    """Cuts the centre patch and the labelled neighbour of every image.

    The centre patch of image ``b`` starts at ``centre + shifts[b, 0]`` and its neighbour at
    ``centre + NEIGHBOURS[labels[b]] * (patch + gap) + shifts[b, 1]``, with ``centre`` from
    :func:`patch_pair_geometry`. Batched gathers; runs under XLA.

    Args:
        images: ``[batch, H, W, C]`` with static ``H`` and ``W``, any dtype.
        labels: int ``[batch]`` in ``[0, 8)``.
        shifts: int ``[batch, 2, 2]`` (centre / neighbour, row / column).
        patch_size: ``(height, width)``.
        gap: ``(height, width)``.

    Returns:
        ``(centre_patches, neighbour_patches)``, each ``[batch, ph, pw, C]``.
    """
    images = tf.convert_to_tensor(images)
    _check_images(images)
    jitter = (0, 0)  # the caller's shifts are trusted to stay within the grid's margin
    centre = np.array(patch_pair_geometry(images.shape[1:3], patch_size, gap, jitter), np.int32)
    stride = np.array(patch_size, np.int32) + np.array(gap, np.int32)
    steps = tf.gather(tf.constant(np.array(NEIGHBOURS, np.int32) * stride), labels)  # [b, 2]
    shifts = tf.cast(shifts, tf.int32)
    centre_patches = _crop(images, centre + shifts[:, 0], patch_size)
    neighbour_patches = _crop(images, centre + steps + shifts[:, 1], patch_size)
    return centre_patches, neighbour_patches


def make_patch_pairs(images, seed, patch_size, gap, max_jitter):
    """Random patch pairs of a batch: centre patches, neighbour patches and neighbour labels.

    Args:
        images: ``[batch, H, W, C]``.
        seed: int tensor ``[2]``; every image gets its own draws.
        patch_size: ``(height, width)``.
        gap: ``(height, width)``.
        max_jitter: ``(height, width)``.

    Returns:
        ``(centre_patches, neighbour_patches, labels)``: ``[batch, ph, pw, C]`` twice and int32
        ``[batch]``.
    """
    images = tf.convert_to_tensor(images)
    _check_images(images)
    patch_pair_geometry(images.shape[1:3], patch_size, gap, max_jitter)
    labels, shifts = sample_patch_pairs(tf.shape(images)[0], seed, max_jitter)
    centre, neighbour = cut_patch_pairs(images, labels, shifts, patch_size, gap)
    return centre, neighbour, labels


def default_patch_geometry(image_size):
    """The paper's proportions scaled to ``image_size``: patches of ``3/14`` of the side, gaps of
    half a patch (48 px for 96-px patches), jitter ``7/96`` of a patch but at least 1 px
    (28 px: 6-px patches, 3-px gaps, 1 px of jitter; 225 px: 48, 24, 4).

    Returns:
        ``(patch_size, gap, jitter)`` pairs.
    """
    patch = tuple(max(1, side * 3 // 14) for side in image_size)
    gap = tuple(p // 2 for p in patch)
    jitter = tuple(max(1, round(p * 7 / 96)) for p in patch)
    return patch, gap, jitter


def pair(value, name, allow_zero=False):
    """``value`` as ``(height, width)`` of positive ints (or non-negative), or a ``ValueError``."""
    if allow_zero:
        pair_value = (value, value) if isinstance(value, int) else value
        try:
            valid = len(pair_value) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pair_value
            )
        except TypeError:
            valid = False
        if not valid:
            raise ValueError(
                f"`{name}` must be a non-negative int or a pair (height, width) of them; "
                f"received {value!r}. Fix: pass e.g. {name}=1, or 0 for none."
            )
        return tuple(int(v) for v in pair_value)
    return _pair(value, name, f"pass e.g. {name}=6")


def _check_images(images):
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise ValueError(
            f"Patch pairs take images [batch, height, width, channels] of a known size; "
            f"received shape {shape}. Fix: batch the images and give them a fixed size."
        )


def sample_color_drops(batch_size, seed, patch_size, channels):
    """Each patch pair's color-dropping draws (Doersch et al. 2015, section 3.1).

    Stateless (philox), like :func:`sample_patch_pairs`.

    Args:
        batch_size: number of pairs (int or scalar tensor).
        seed: int tensor ``[2]``.
        patch_size: ``(height, width)`` of a patch.
        channels: color channels of the images.

    Returns:
        ``(keep, noise)``: int32 ``[batch, 2]`` (centre, neighbour) uniform in ``[0, channels)``,
        the channel each patch keeps; float32 ``[batch, 2, height, width, channels]`` standard
        normal noise for the dropped channels.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    keep = tf.random.stateless_uniform(
        [batch_size, 2], seeds[0], 0, channels, dtype=tf.int32, alg="philox"
    )
    noise = tf.random.stateless_normal(
        [batch_size, 2, *patch_size, channels], seeds[1], alg="philox"
    )
    return keep, noise


def drop_colors(patches, keep, noise):
    """Keeps one color channel of each patch and replaces the others with faint noise.

    Against the chromatic-aberration shortcut of relative patch location (Doersch et al. 2015,
    section 3.1): a lens shifts green against magenta by an amount that depends on the position
    in the frame, so a network can tell where a patch lies from its color fringes alone.
    Dropping 2 of 3 channels removes the fringes. As in the paper, a dropped channel becomes
    Gaussian noise with 1/100 of the standard deviation of the kept channel (over the patch's
    pixels); the paper's inputs are mean-subtracted, so its noise is centred on the mean, and
    here it is centred on the kept channel's mean.

    Args:
        patches: ``[n, height, width, C]``.
        keep: int ``[n]``, the channel to keep.
        noise: ``[n, height, width, C]`` standard normal.

    Returns:
        ``[n, height, width, C]``, the dtype of ``patches``.
    """
    channels = patches.shape[-1]
    mask = tf.one_hot(keep, channels, dtype=patches.dtype)[:, None, None, :]
    kept = tf.reduce_sum(patches * mask, axis=-1, keepdims=True)
    mean, variance = tf.nn.moments(tf.cast(kept, tf.float32), axes=[1, 2, 3], keepdims=True)
    faint = tf.cast(mean + noise * (tf.sqrt(variance) / 100.0), patches.dtype)
    return patches * mask + faint * (1 - mask)
