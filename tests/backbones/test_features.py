"""Tests for keras_ssl.backbones.features: pyramid levels and rebuilding at a new input size."""

import keras
import numpy as np
import pytest

from keras_ssl.backbones import (
    ResNet18,
    SmallResNet,
    ViT,
    feature_extractor,
    feature_levels,
    from_keras_model,
    pyramid_outputs,
    with_input_shape,
)


def test_small_resnet_levels_are_stage_outputs_finest_first():
    encoder = SmallResNet((28, 28, 1), widths=(4, 8, 16))
    assert feature_levels(encoder) == [
        "stage1_block1_out",
        "stage2_block1_out",
        "stage3_block1_out",
    ]
    shapes = [tuple(t.shape) for t in pyramid_outputs(encoder).values()]
    assert shapes == [(None, 28, 28, 4), (None, 14, 14, 8), (None, 7, 7, 16)]


def test_imagenet_stem_levels_start_at_stem():
    encoder = ResNet18((64, 64, 3), stem="imagenet")
    assert feature_levels(encoder) == [
        "stem_relu",
        "stage1_block2_out",
        "stage2_block2_out",
        "stage3_block2_out",
        "stage4_block2_out",
    ]


def test_extractor_maps_equal_the_encoder_layers():
    encoder = SmallResNet((28, 28, 1), widths=(4, 8))
    images = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    maps = feature_extractor(encoder)(images)
    probe = keras.Model(encoder.input, encoder.get_layer("stage2_block1_out").output)
    np.testing.assert_array_equal(np.asarray(maps[1]), np.asarray(probe(images)))
    pooled = np.asarray(maps[1]).mean(axis=(1, 2))
    np.testing.assert_allclose(pooled, np.asarray(encoder(images)), rtol=1e-5, atol=1e-6)


def test_vit_levels_are_token_grids():
    encoder = ViT((28, 28, 1), patch_size=4, dim=8, depth=4, num_heads=2)
    assert feature_levels(encoder) == ["block1_add2", "block2_add2", "block3_add2", "block4_add2"]
    images = np.random.default_rng(1).random((2, 28, 28, 1)).astype("float32")
    grid = np.asarray(feature_extractor(encoder, ["block4_add2"])(images))
    tokens = np.asarray(keras.Model(encoder.input, encoder.get_layer("block4_add2").output)(images))
    np.testing.assert_array_equal(grid, tokens[:, 1:].reshape(2, 7, 7, 8))


def test_adapter_levels_come_from_the_wrapped_model():
    app = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35
    )
    encoder = from_keras_model(app, input_range=(-1, 1))
    levels = feature_levels(encoder)
    assert levels[-1] == "out_relu"
    shapes = [tuple(o.shape[1:3]) for o in feature_extractor(encoder).outputs]
    assert shapes == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]


def test_with_input_shape_round_trip_gives_identical_features():
    encoder = SmallResNet((28, 28, 1), widths=(4, 8))
    big = with_input_shape(encoder, (56, 56, 1))
    assert big.input_shape == (None, 56, 56, 1)
    back = with_input_shape(big, (28, 28, 1))
    images = np.random.default_rng(2).random((3, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(encoder(images)), np.asarray(back(images)))
    fresh = with_input_shape(encoder, (28, 28, 1), copy_weights=False)
    assert not np.allclose(np.asarray(encoder(images)), np.asarray(fresh(images)))


def test_with_input_shape_interpolates_vit_position_embeddings():
    encoder = ViT((28, 28, 1), patch_size=4, dim=8, depth=1, num_heads=2)
    big = with_input_shape(encoder, (56, 56, 1))
    expected = encoder.get_layer("patch_embedding").position_embeddings((14, 14))
    np.testing.assert_allclose(
        np.asarray(big.get_layer("patch_embedding").position_embedding),
        np.asarray(expected),
        rtol=1e-6,
        atol=1e-6,
    )
    np.testing.assert_array_equal(
        np.asarray(big.get_layer("block1_mlp1").kernel),
        np.asarray(encoder.get_layer("block1_mlp1").kernel),
    )


def test_with_input_shape_errors():
    encoder = SmallResNet((28, 28, 1), widths=(4,))
    with pytest.raises(ValueError, match=r"received \(56, 56\).*Fix"):
        with_input_shape(encoder, (56, 56))
    with pytest.raises(ValueError, match="has 3 channels but encoder"):
        with_input_shape(encoder, (56, 56, 3))
    with pytest.raises(ValueError, match="Unknown feature levels"):
        pyramid_outputs(encoder, ["nope"])
    with pytest.raises(ValueError, match="must be a functional keras.Model"):
        feature_levels("resnet")
