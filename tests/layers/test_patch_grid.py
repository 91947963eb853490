import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones
from keras_ssl.layers.patch_grid import (
    PatchGrid,
    PatchGridEncoder,
    grid_geometry,
    grid_mean_encoder,
)


def numpy_patches(images, patch, stride, origin, grid):
    """Reference: every patch cut by plain slicing, [b, rows, cols, ph, pw, c]."""
    (ph, pw), (sh, sw), (top, left), (rows, cols) = patch, stride, origin, grid
    out = np.zeros((len(images), rows, cols, ph, pw, images.shape[-1]), images.dtype)
    for r in range(rows):
        for c in range(cols):
            y, x = top + r * sh, left + c * sw
            out[:, r, c] = images[:, y : y + ph, x : x + pw]
    return out


def test_overlapping_patches_equal_numpy_slicing():
    images = np.random.default_rng(0).random((2, 13, 11, 3)).astype(np.float32)
    layer = PatchGrid((4, 3), stride=(3, 2))
    patches = np.asarray(layer(images))
    # 13 rows: (13 - 4) // 3 + 1 = 4 patches covering 13 rows exactly; 11 cols: 5 patches of 3
    # with stride 2 cover 11 columns exactly.
    assert patches.shape == (2, 4, 5, 4, 3, 3)
    np.testing.assert_array_equal(patches, numpy_patches(images, (4, 3), (3, 2), (0, 0), (4, 5)))
    # Neighbours share the overlapping pixels: the last row of patch (0, c) is image row 3,
    # which is also row 0 of patch (1, c).
    np.testing.assert_array_equal(patches[:, 0, :, 3], patches[:, 1, :, 0])
    np.testing.assert_array_equal(patches[:, 1, 2, 0, 0], images[:, 3, 4])


def test_cpc_geometry_for_fashion_mnist_and_the_paper():
    assert grid_geometry((28, 28), (7, 7), (3, 3)) == ((8, 8), (0, 0))
    assert grid_geometry((28, 28), (8, 8), (4, 4)) == ((6, 6), (0, 0))
    assert grid_geometry((256, 256), (64, 64), (32, 32)) == ((7, 7), (0, 0))


def test_grid_that_does_not_cover_the_image_is_centred():
    images = np.arange(2 * 10 * 10).reshape(2, 10, 10, 1).astype(np.uint8)
    # 10 px, patch 4, stride 3: 3 patches use 10 px; a 2x2 grid uses 7 px, 3 spare -> top 1.
    layer = PatchGrid(4, stride=3, grid_size=2)
    patches = np.asarray(layer(images))
    assert patches.dtype == np.uint8
    np.testing.assert_array_equal(patches, numpy_patches(images, (4, 4), (3, 3), (1, 1), (2, 2)))
    # 9 px with patch 4 stride 4 (no overlap): 2 patches use 8 px, the spare pixel goes right.
    odd = np.random.default_rng(1).random((1, 9, 9, 1)).astype(np.float32)
    patches = np.asarray(PatchGrid(4)(odd))
    np.testing.assert_array_equal(patches, numpy_patches(odd, (4, 4), (4, 4), (0, 0), (2, 2)))


def test_runs_under_xla_and_in_a_symbolic_model():
    images = np.random.default_rng(2).random((3, 12, 12, 2)).astype(np.float32)
    layer = PatchGrid(6, stride=3)
    compiled = tf.function(layer, jit_compile=True)
    np.testing.assert_array_equal(compiled(images), layer(images))
    inputs = keras.Input((12, 12, 2))
    model = keras.Model(inputs, PatchGrid(6, stride=3)(inputs))
    assert model.output_shape == (None, 3, 3, 6, 6, 2)
    np.testing.assert_array_equal(model(images), layer(images))


def test_config_round_trip():
    layer = PatchGrid(8, stride=4, grid_size=(3, 2), name="grid")
    config = layer.get_config()
    assert config["patch_size"] == (8, 8) and config["stride"] == (4, 4)
    assert config["grid_size"] == (3, 2)
    rebuilt = PatchGrid.from_config(config)
    assert rebuilt.get_config() == config


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"patch_size": 0}, "patch_size.*positive.*received 0"),
        ({"patch_size": -3}, "patch_size.*received -3"),
        ({"patch_size": (4, 4, 4)}, "patch_size.*pair"),
        ({"patch_size": 4, "stride": 0}, "stride.*received 0"),
        ({"patch_size": 4, "grid_size": (2, -1)}, "grid_size.*received"),
        ({"patch_size": 2.5}, "patch_size.*received 2.5"),
    ],
)
def test_bad_sizes_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PatchGrid(**kwargs)


def test_grid_larger_than_the_image_raises():
    images = np.zeros((1, 10, 10, 1), np.float32)
    with pytest.raises(ValueError, match="Patches of height 12 do not fit in images of height 10"):
        PatchGrid(12)(images)
    with pytest.raises(ValueError, match=r"grid of 4 patches along the width needs 13 pixels"):
        PatchGrid((4, 4), stride=3, grid_size=(3, 4))(images)
    with pytest.raises(ValueError, match="rank|height and width"):
        PatchGrid(4)(np.zeros((10, 10, 1), np.float32))


def make_patch_encoder(patch=(4, 4), channels=1):
    return backbones.SmallResNet((*patch, channels), widths=(4, 8))


def test_patch_grid_encoder_encodes_every_patch_in_one_call():
    keras.utils.set_random_seed(0)
    encoder = make_patch_encoder()
    layer = PatchGridEncoder(encoder, stride=2)
    images = np.random.default_rng(3).random((2, 10, 10, 1)).astype(np.float32)
    grid = np.asarray(layer(images))
    assert grid.shape == (2, 4, 4, 8)
    patches = numpy_patches(images, (4, 4), (2, 2), (0, 0), (4, 4))
    for r in range(4):
        for c in range(4):
            expected = encoder(patches[:, r, c], training=False)
            np.testing.assert_allclose(grid[:, r, c], expected, rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((None, 10, 10, 1)) == (None, 4, 4, 8)


def test_patch_grid_encoder_batch_norm_sees_all_patches_at_once():
    keras.utils.set_random_seed(0)
    encoder = make_patch_encoder()
    layer = PatchGridEncoder(encoder, stride=2)
    images = np.random.default_rng(4).random((2, 10, 10, 1)).astype(np.float32)
    grid = np.asarray(layer(images, training=True))
    flat = numpy_patches(images, (4, 4), (2, 2), (0, 0), (4, 4)).reshape(-1, 4, 4, 1)
    expected = np.asarray(encoder(flat, training=True)).reshape(2, 4, 4, 8)
    np.testing.assert_allclose(grid, expected, rtol=1e-5, atol=1e-6)


def test_patch_grid_encoder_config_round_trip():
    layer = PatchGridEncoder(make_patch_encoder(), stride=3, grid_size=2, name="pge")
    config = layer.get_config()
    rebuilt = PatchGridEncoder.from_config(config)
    assert rebuilt.stride == (3, 3) and rebuilt.grid_size == (2, 2)
    assert rebuilt.encoder.input_shape == (None, 4, 4, 1)


def test_patch_grid_encoder_errors():
    with pytest.raises(ValueError, match="must be a keras.Model taking patches"):
        PatchGridEncoder(lambda x: x)
    maps = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match=r"output shape \(None, 2, 2, 2\)"):
        PatchGridEncoder(maps)
    layer = PatchGridEncoder(make_patch_encoder())
    with pytest.raises(ValueError, match="3 channels but its encoder takes patches with 1"):
        layer(np.zeros((1, 8, 8, 3), np.float32))


def test_grid_mean_encoder_maps_images_to_the_mean_patch_encoding():
    keras.utils.set_random_seed(1)
    patch_encoder = make_patch_encoder()
    grid_encoder, image_encoder = grid_mean_encoder(patch_encoder, (10, 10, 1), stride=2)
    assert isinstance(grid_encoder, PatchGridEncoder) and grid_encoder.encoder is patch_encoder
    assert image_encoder.input_shape == (None, 10, 10, 1)
    assert image_encoder.output_shape == (None, 8)
    assert {id(v) for v in image_encoder.weights} == {id(v) for v in patch_encoder.weights}
    images = np.random.default_rng(5).random((3, 10, 10, 1)).astype(np.float32)
    patches = numpy_patches(images, (4, 4), (2, 2), (0, 0), (4, 4)).reshape(-1, 4, 4, 1)
    expected = np.asarray(patch_encoder(patches, training=False)).reshape(3, 16, 8).mean(axis=1)
    np.testing.assert_allclose(image_encoder(images), expected, rtol=1e-5, atol=1e-6)
    _, centred = grid_mean_encoder(patch_encoder, (10, 10, 1), stride=3, grid_size=2)
    assert centred.output_shape == (None, 8)
