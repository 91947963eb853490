import keras
import numpy as np
import pytest

from keras_ssl.layers.batch_norm import BatchNormalization
from keras_ssl.layers.pixel_classifier import pixel_classifier


def test_upsamples_the_maps_to_per_pixel_logits():
    head = pixel_classifier((2, 4, 6), (8, 8), 5, 3, False, "ab_head")
    assert head.name == "ab_head" and head.built
    assert head.input_shape == (None, 2, 4, 6) and head.output_shape == (None, 8, 8, 5)
    names = [layer.name for layer in head.layers[1:]]
    assert names == ["ab_head_conv", "ab_head_bn", "ab_head_relu", "ab_head_up", "ab_head_logits"]
    assert head.get_layer("ab_head_up").size == (4, 2)
    assert head.get_layer("ab_head_conv").kernel.shape == (3, 3, 6, 3)
    maps = np.random.default_rng(0).normal(size=(2, 2, 4, 6)).astype(np.float32)
    assert head(maps).shape == (2, 8, 8, 5)


def test_maps_at_the_image_size_are_not_upsampled():
    head = pixel_classifier((8, 8, 4), (8, 8), 3, 4, True, "head")
    assert head.output_shape == (None, 8, 8, 3)
    assert "head_up" not in [layer.name for layer in head.layers]
    (batch_norm,) = [layer for layer in head.layers if isinstance(layer, BatchNormalization)]
    assert batch_norm.synchronized
    assert isinstance(batch_norm, keras.layers.BatchNormalization)


def test_image_size_must_be_a_multiple_of_the_maps():
    with pytest.raises(ValueError, match=r"multiple of the encoder's feature-map size \(3, 3\)"):
        pixel_classifier((3, 3, 4), (10, 10), 3, 4, False, "head")
