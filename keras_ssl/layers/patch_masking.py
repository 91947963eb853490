"""Patches and random patch masking for masked image modelling (MAE), with static shapes.

Images are cut into non-overlapping ``p x p`` patches in row-major grid order, the order in
which ``backbones.vit.PatchEmbedding`` makes its tokens, and each patch is flattened pixel row
by pixel row, channels last (``[p, p, C] -> [p * p * C]``). Random masking follows MAE (He et
al. 2021, https://arxiv.org/abs/2111.06377, Sec. 3): each image's patches are shuffled by the
``argsort`` of uniform noise and the first ``num_visible`` stay visible; the others are
masked. The number kept is the same for every image, so every tensor has a static shape and the
step compiles with XLA. Where the noise comes from is the caller's choice (MAE draws it for the
global batch from a stateless seed, so replicas agree).
"""

import numpy as np
import tensorflow as tf

from keras_ssl.validation import check_in_range, check_int


def _grid(image_shape, patch_size):
    height, width = int(image_shape[0]), int(image_shape[1])
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"The image size must be a multiple of the patch size; received images of size "
            f"({height}, {width}) with patch_size={patch_size}. Fix: use a patch size that "
            "divides the image size (4 or 7 for 28 px, 16 for 224 px)."
        )
    return height // patch_size, width // patch_size


def patchify(images, patch_size):
    """Images ``[batch, H, W, C]`` -> patches ``[batch, (H / p) * (W / p), p * p * C]``.

    Patches are in row-major grid order; each is flattened as ``[p, p, C]`` (row, column,
    channel).

    Args:
        images: ``[batch, H, W, C]`` with static ``H``, ``W``, ``C`` multiples of ``p``.
        patch_size: patch side ``p`` in pixels.

    Returns:
        ``[batch, L, p * p * C]`` in the images' dtype, ``L = (H / p) * (W / p)``.
    """
    patch_size = check_int(patch_size, "patch_size", fix="pass e.g. patch_size=4.")
    images = tf.convert_to_tensor(images)
    rows, columns = _grid(images.shape[1:3], patch_size)
    channels = images.shape[-1]
    patches = tf.reshape(images, [-1, rows, patch_size, columns, patch_size, channels])
    patches = tf.transpose(patches, [0, 1, 3, 2, 4, 5])
    return tf.reshape(patches, [-1, rows * columns, patch_size * patch_size * channels])


def unpatchify(patches, patch_size, image_shape):
    """The inverse of :func:`patchify`: ``[batch, L, p * p * C]`` -> ``[batch, H, W, C]``.

    Args:
        patches: ``[batch, L, p * p * C]``.
        patch_size: patch side ``p``.
        image_shape: ``(H, W, C)`` of the images.

    Returns:
        ``[batch, H, W, C]``.
    """
    patch_size = check_int(patch_size, "patch_size", fix="pass e.g. patch_size=4.")
    height, width, channels = (int(d) for d in image_shape)
    rows, columns = _grid((height, width), patch_size)
    patches = tf.convert_to_tensor(patches)
    expected = (rows * columns, patch_size * patch_size * channels)
    if tuple(patches.shape[1:]) != expected:
        raise ValueError(
            f"`patches` must be [batch, {expected[0]}, {expected[1]}] for images "
            f"{tuple(image_shape)} and patch_size={patch_size}; received shape "
            f"{tuple(patches.shape)}. Fix: pass the patches of such images (patchify's output)."
        )
    images = tf.reshape(patches, [-1, rows, columns, patch_size, patch_size, channels])
    images = tf.transpose(images, [0, 1, 3, 2, 4, 5])
    return tf.reshape(images, [-1, height, width, channels])


def num_visible_patches(num_patches, mask_ratio):
    """Patches kept per image: ``int(L * (1 - mask_ratio))`` (MAE's ``len_keep``), at least 1.

    Raises:
        ValueError: if ``mask_ratio`` is not in ``[0, 1)`` or leaves no visible patch.
    """
    num_patches = check_int(num_patches, "num_patches")
    check_in_range(
        mask_ratio,
        "mask_ratio",
        0,
        1,
        high_open=True,
        fix="pass the share of patches to mask, e.g. 0.75 (MAE).",
    )
    keep = int(num_patches * (1.0 - mask_ratio))
    if keep < 1:
        raise ValueError(
            f"`mask_ratio`={mask_ratio} keeps no patch of {num_patches}; expected at least one "
            f"visible patch. Fix: lower mask_ratio below {1 - 1 / num_patches:.3f} or use "
            "smaller patches."
        )
    return keep


def random_masking(noise, num_visible):
    """Per-image random masking from noise: ``argsort`` shuffles the patches, the first
    ``num_visible`` of the shuffle stay visible.

    Args:
        noise: ``[batch, L]`` float noise (uniform in MAE); lower values are kept. Ties go to
            the lower patch index (a stable sort), so equal noise gives identical masks.
        num_visible: patches kept per image (Python int, ``1 <= num_visible <= L``).

    Returns:
        ``(ids_keep, mask, ids_restore)``: ``ids_keep`` int32 ``[batch, num_visible]``, the
        visible patches in shuffled order; ``mask`` float32 ``[batch, L]``, 1 for masked and 0
        for visible patches (grid order); ``ids_restore`` int32 ``[batch, L]``, the inverse
        permutation, which puts ``concat(visible tokens, mask tokens)`` back in grid order
        (:func:`restore_tokens`).
    """
    noise = tf.convert_to_tensor(noise)
    num_patches = noise.shape[-1]
    num_visible = check_int(num_visible, "num_visible", fix="pass e.g. L // 4.")
    if noise.shape.rank != 2 or num_patches is None or num_visible > num_patches:
        raise ValueError(
            f"`noise` must be [batch, L] with a static L >= num_visible={num_visible}; received "
            f"shape {tuple(noise.shape)}. Fix: draw one noise value per patch."
        )
    ids_shuffle = tf.argsort(noise, axis=-1, stable=True, direction="ASCENDING")
    ids_restore = tf.argsort(ids_shuffle, axis=-1, stable=True, direction="ASCENDING")
    ids_keep = ids_shuffle[:, :num_visible]
    mask = tf.cast(ids_restore >= num_visible, tf.float32)
    return tf.cast(ids_keep, tf.int32), mask, tf.cast(ids_restore, tf.int32)


def take_tokens(tokens, ids):
    """``tokens[b, ids[b, i]]``: ``[batch, L, D]`` and ``[batch, k]`` -> ``[batch, k, D]``."""
    return tf.gather(tokens, ids, axis=1, batch_dims=1)


def restore_tokens(visible, mask_token, ids_restore):
    """Visible tokens plus a shared mask token at the masked positions, in grid order.

    Args:
        visible: ``[batch, k, D]`` tokens of the visible patches, in ``ids_keep`` order.
        mask_token: ``[1, 1, D]`` (or ``[D]``) learned mask token.
        ids_restore: ``[batch, L]`` from :func:`random_masking`.

    Returns:
        ``[batch, L, D]``: position ``l`` holds its visible token or the mask token.
    """
    visible = tf.convert_to_tensor(visible)
    num_patches = ids_restore.shape[-1]
    mask_token = tf.reshape(tf.cast(mask_token, visible.dtype), [1, 1, -1])
    fill = tf.tile(mask_token, tf.stack([tf.shape(visible)[0], num_patches - visible.shape[1], 1]))
    return take_tokens(tf.concat([visible, fill], axis=1), ids_restore)


def paste_masked_patches(patches, predicted_patches, mask, patch_size, image_shape):
    """Images of a masked reconstruction: the visible patches with the predicted masked ones
    pasted in, for display.

    Args:
        patches: ``[batch, L, p * p * C]`` the original patches (:func:`patchify`).
        predicted_patches: ``[batch, L, p * p * C]`` predicted pixels of every patch.
        mask: ``[batch, L]``, 1 for masked patches (:func:`random_masking`).
        patch_size: patch side ``p``.
        image_shape: ``(H, W, C)`` of the images.

    Returns:
        ``(pixel_masks, predictions, pasted)``: ``[batch, H, W, 1]`` with 1 at visible pixels,
        the predicted image ``[batch, H, W, C]`` and the visible pixels with the predicted
        masked patches pasted in ``[batch, H, W, C]``.
    """
    masked = tf.cast(mask, predicted_patches.dtype)[..., None]
    pasted = patches * (1.0 - masked) + predicted_patches * masked
    visible = tf.tile(1.0 - masked, [1, 1, patch_size**2])
    return (
        unpatchify(visible, patch_size, (*image_shape[:2], 1)),
        unpatchify(predicted_patches, patch_size, image_shape),
        unpatchify(pasted, patch_size, image_shape),
    )


def sincos_position_embedding(dim, grid_size, class_token=True):
    """Fixed 2-D sine-cosine position embeddings (MAE's decoder; Vaswani et al.'s 1-D code per
    axis).

    Half of the ``dim`` channels code the column ``x`` and half the row ``y`` of a patch: for
    a coordinate ``t`` and ``k = 0 .. dim / 4 - 1``, ``sin(t * w_k)`` then ``cos(t * w_k)`` with
    ``w_k = 10000^(-k / (dim / 4))``; the column's code comes first. Patches are in row-major
    order; the class token (first, when ``class_token``) gets zeros.

    Args:
        dim: embedding width, a multiple of 4.
        grid_size: ``(rows, columns)`` of the patch grid.
        class_token: prepend a zero row for the class token.

    Returns:
        float32 NumPy array ``[1 + rows * columns, dim]`` (without the leading row when
        ``class_token`` is False).
    """
    dim = check_int(dim, "dim", fix="pass a multiple of 4, e.g. 512.")
    if dim % 4:
        raise ValueError(
            f"`dim` must be a multiple of 4 for 2-D sine-cosine embeddings; received {dim}. "
            "Fix: pass e.g. 64, 128 or 512."
        )
    rows, columns = (int(g) for g in grid_size)
    quarter = dim // 4
    frequencies = 1.0 / 10000.0 ** (np.arange(quarter, dtype=np.float64) / quarter)
    y, x = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")

    def code(positions):
        angles = positions.reshape(-1, 1).astype(np.float64) * frequencies[None]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    embedding = np.concatenate([code(x), code(y)], axis=1)
    if class_token:
        embedding = np.concatenate([np.zeros((1, dim)), embedding], axis=0)
    return embedding.astype(np.float32)
