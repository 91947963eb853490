"""Tests for keras_ssl.downstream.UNet: output sizes, frozen encoder and size errors."""

import numpy as np
import pytest

from keras_ssl.backbones import ResNet, SmallResNet, ViT
from keras_ssl.downstream import UNet


@pytest.mark.parametrize(
    "encoder",
    [
        lambda: SmallResNet((28, 28, 1), widths=(4, 8, 16)),
        lambda: ResNet((32, 32, 1), (1, 1), (4, 8), stem="imagenet"),
        lambda: ViT((28, 28, 1), patch_size=4, dim=8, depth=2, num_heads=2),
    ],
)
def test_output_has_input_spatial_size(encoder):
    model = UNet(encoder(), num_classes=5, input_shape=(56, 56, 1))
    images = np.random.default_rng(0).random((2, 56, 56, 1)).astype("float32")
    assert tuple(model(images).shape) == (2, 56, 56, 5)


def test_frozen_encoder_is_copied_and_not_trained():
    encoder = SmallResNet((28, 28, 1), widths=(4, 8))
    before = [np.array(w) for w in encoder.weights]
    model = UNet(encoder, num_classes=3, freeze_encoder=True)
    encoder_weights = model.get_layer("small_resnet_features").weights
    frozen = [np.array(w) for w in encoder_weights]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    model.fit(rng.random((4, 28, 28, 1)), rng.integers(0, 3, (4, 28, 28)), epochs=1, verbose=0)
    for old, new in zip(frozen, encoder_weights):
        np.testing.assert_array_equal(old, np.array(new))
    assert encoder.trainable
    for old, new in zip(before, encoder.weights):
        np.testing.assert_array_equal(old, np.array(new))


def test_odd_size_fails_with_a_clear_error():
    encoder = SmallResNet((28, 28, 1), widths=(4, 8, 16))
    with pytest.raises(ValueError, match=r"input size \(57, 57\).*Fix: pad or resize.*\(60, 60\)"):
        UNet(encoder, num_classes=2, input_shape=(57, 57, 1))
    with pytest.raises(ValueError, match="`num_classes` must be an integer >= 1"):
        UNet(encoder, num_classes=0)
    with pytest.raises(ValueError, match="`decoder_widths` needs one width per encoder level"):
        UNet(encoder, num_classes=2, decoder_widths=(4,))
