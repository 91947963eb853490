import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.backbones.vit import ViT
from keras_ssl.layers.patch_masking import (
    num_visible_patches,
    paste_masked_patches,
    patchify,
    random_masking,
    restore_tokens,
    sincos_position_embedding,
    take_tokens,
    unpatchify,
)


def _numpy_patchify(images, p):
    n, h, w, c = images.shape
    patches = []
    for row in range(h // p):
        for column in range(w // p):
            block = images[:, row * p : (row + 1) * p, column * p : (column + 1) * p, :]
            patches.append(block.reshape(n, -1))  # pixel rows, then columns, then channels
    return np.stack(patches, axis=1)


def test_patchify_hand_values_and_row_major_order():
    images = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    patches = patchify(images, 2).numpy()
    np.testing.assert_array_equal(
        patches[0], [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    )


def test_patchify_matches_a_numpy_reference_and_unpatchify_inverts_it():
    images = np.random.default_rng(0).random((3, 6, 9, 2)).astype(np.float32)
    patches = patchify(images, 3).numpy()
    assert patches.shape == (3, 6, 18)
    np.testing.assert_array_equal(patches, _numpy_patchify(images, 3))
    np.testing.assert_array_equal(unpatchify(patches, 3, (6, 9, 2)).numpy(), images)


def test_patch_order_is_the_vit_token_order():
    # The ViT's strided convolution on a patch is a Dense layer on that patch's pixels in
    # patchify's order: token l of PatchEmbedding is patch l.
    vit = ViT((8, 8, 2), patch_size=4, dim=6, depth=1, num_heads=2)
    embedding = vit.get_layer("patch_embedding")
    images = np.random.default_rng(1).random((2, 8, 8, 2)).astype(np.float32)
    kernel = embedding.projection.kernel.numpy().reshape(-1, 6)  # [p, p, C, dim] -> [p*p*C, dim]
    expected = patchify(images, 4).numpy() @ kernel + embedding.projection.bias.numpy()
    expected += embedding.position_embedding.numpy()[:, 1:]
    np.testing.assert_allclose(
        embedding.patch_tokens(tf.constant(images)).numpy(), expected, rtol=1e-5, atol=1e-6
    )


def test_random_masking_keeps_the_lowest_noise_and_inverts_the_shuffle():
    noise = np.array([[0.5, 0.1, 0.9, 0.3], [0.2, 0.8, 0.4, 0.6]], np.float32)
    ids_keep, mask, ids_restore = (t.numpy() for t in random_masking(noise, 2))
    np.testing.assert_array_equal(ids_keep, [[1, 3], [0, 2]])
    np.testing.assert_array_equal(mask, [[1, 0, 1, 0], [0, 1, 0, 1]])
    shuffle = np.argsort(noise, axis=1, kind="stable")
    np.testing.assert_array_equal(
        np.take_along_axis(shuffle, ids_restore, axis=1), [[0, 1, 2, 3]] * 2
    )
    assert ids_keep.dtype == np.int32 and ids_restore.dtype == np.int32


def test_random_masking_many_images_static_count_and_ties_are_stable():
    noise = np.random.default_rng(0).random((64, 49)).astype(np.float32)
    ids_keep, mask, _ = random_masking(noise, 12)
    np.testing.assert_array_equal(mask.numpy().sum(axis=1), np.full(64, 37.0))
    expected = np.sort(np.argsort(noise, axis=1, kind="stable")[:, :12], axis=1)
    np.testing.assert_array_equal(np.sort(ids_keep.numpy(), axis=1), expected)
    # Equal noise: the lower patch index comes first, so the masks are deterministic.
    tied, _, _ = random_masking(np.zeros((1, 5), np.float32), 2)
    np.testing.assert_array_equal(tied.numpy(), [[0, 1]])


def test_random_masking_is_the_same_under_xla():
    noise = tf.constant(np.random.default_rng(2).random((8, 16)).astype(np.float32))
    compiled = tf.function(lambda n: random_masking(n, 4), jit_compile=True)(noise)
    for got, want in zip(compiled, random_masking(noise, 4)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_take_and_restore_put_the_mask_token_at_masked_positions():
    rng = np.random.default_rng(3)
    tokens = rng.random((2, 6, 3)).astype(np.float32)
    noise = rng.random((2, 6)).astype(np.float32)
    ids_keep, mask, ids_restore = random_masking(noise, 2)
    visible = take_tokens(tokens, ids_keep).numpy()
    np.testing.assert_array_equal(visible, tokens[np.arange(2)[:, None], ids_keep.numpy()])
    mask_token = np.array([7.0, 8.0, 9.0], np.float32)
    restored = restore_tokens(visible, mask_token.reshape(1, 1, 3), ids_restore).numpy()
    masked = mask.numpy().astype(bool)
    np.testing.assert_array_equal(restored[~masked], tokens[~masked])
    np.testing.assert_array_equal(restored[masked], np.tile(mask_token, (int(masked.sum()), 1)))


def test_num_visible_patches_is_maes_len_keep():
    assert num_visible_patches(49, 0.75) == 12  # int(49 * 0.25)
    assert num_visible_patches(196, 0.75) == 49  # ViT-B/16 at 224 px
    assert num_visible_patches(16, 0.0) == 16


def test_paste_masked_patches_keeps_visible_pixels_and_fills_the_masked_ones():
    rng = np.random.default_rng(4)
    images = rng.random((2, 4, 6, 3)).astype(np.float32)
    predicted = rng.random((2, 4, 6, 3)).astype(np.float32)
    mask = np.array([[1, 0, 0, 1, 0, 1], [0, 0, 1, 1, 1, 0]], np.float32)  # 2x3 grid, p = 2
    pixel_masks, predictions, pasted = paste_masked_patches(
        patchify(images, 2), patchify(predicted, 2), mask, 2, (4, 6, 3)
    )
    # NumPy: the mask of every patch spread over its 2x2 pixels, 1 where the patch is visible.
    visible = np.repeat(np.repeat(1 - mask.reshape(2, 2, 3), 2, 1), 2, 2)[..., None]
    np.testing.assert_array_equal(pixel_masks.numpy(), visible)
    np.testing.assert_array_equal(predictions.numpy(), predicted)
    expected = images * visible + predicted * (1 - visible)
    np.testing.assert_allclose(pasted.numpy(), expected, rtol=1e-6, atol=1e-6)


def _sincos_reference(dim, rows, columns):
    # Vaswani et al.'s sin/cos code of the column in the first half and of the row in the second.
    quarter = dim // 4
    table = np.zeros((1 + rows * columns, dim))
    for index in range(rows * columns):
        y, x = divmod(index, columns)
        for half, t in enumerate((x, y)):
            for k in range(quarter):
                angle = t / 10000 ** (k / quarter)
                table[1 + index, half * 2 * quarter + k] = np.sin(angle)
                table[1 + index, half * 2 * quarter + quarter + k] = np.cos(angle)
    return table


def test_sincos_position_embedding():
    table = sincos_position_embedding(4, (1, 2))
    # dim 4: one frequency (1) per half; patch (y=0, x=1) is [sin 1, cos 1, sin 0, cos 0].
    np.testing.assert_allclose(
        table, [[0, 0, 0, 0], [0, 1, 0, 1], [np.sin(1), np.cos(1), 0, 1]], rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        sincos_position_embedding(16, (3, 5)), _sincos_reference(16, 3, 5), rtol=1e-6, atol=1e-6
    )
    assert sincos_position_embedding(8, (2, 2), class_token=False).shape == (4, 8)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: patchify(np.zeros((1, 6, 6, 1)), 4), "multiple of the patch size"),
        (lambda: patchify(np.zeros((1, 8, 8, 1)), 0), "`patch_size` must be an integer >= 1"),
        (lambda: unpatchify(np.zeros((1, 4, 5)), 2, (4, 4, 1)), "must be \\[batch, 4, 4\\]"),
        (lambda: num_visible_patches(16, 1.0), "`mask_ratio` must be a number in \\[0, 1\\)"),
        (lambda: num_visible_patches(16, -0.1), "received -0.1"),
        (lambda: num_visible_patches(4, 0.8), "keeps no patch of 4"),
        (lambda: random_masking(np.zeros((2, 3)), 4), "static L >= num_visible=4"),
        (lambda: sincos_position_embedding(6, (2, 2)), "multiple of 4"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
