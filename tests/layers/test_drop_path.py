import keras
import numpy as np
import pytest

from keras_ssl.backbones.vit import ViTTiny
from keras_ssl.layers import DropPath
from keras_ssl.layers.drop_path import without_stochastic_depth


def test_drops_whole_examples_in_training_and_is_the_identity_otherwise():
    layer = DropPath(0.5)
    x = np.ones((2000, 3), np.float32)
    np.testing.assert_array_equal(layer(x, training=False), x)
    out = layer(x, training=True).numpy()
    assert set(np.unique(out)) == {0.0, 2.0}  # kept examples are scaled by 1 / (1 - rate)
    assert np.all(out.min(axis=1) == out.max(axis=1))  # whole examples are dropped
    assert abs((out[:, 0] == 0).mean() - 0.5) < 0.05
    np.testing.assert_array_equal(DropPath(0.0)(x, training=True), x)


def test_config_round_trip():
    layer = DropPath(0.25, name="drop")
    restored = DropPath.from_config(layer.get_config())
    assert restored.rate == 0.25 and restored.name == "drop"
    assert layer.compute_output_shape((None, 5, 3)) == (None, 5, 3)


@pytest.mark.parametrize("rate", [1.0, -0.1, True, "0.1"])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match=r"`rate` must be a number in \[0, 1\); received"):
        DropPath(rate)


def test_without_stochastic_depth_zeroes_every_drop_path_and_dropout_rate():
    vit = ViTTiny((8, 8, 1), patch_size=4, dim=8, depth=3, num_heads=2, drop_path_rate=0.2)
    inner = keras.Sequential([keras.layers.Dropout(0.3), DropPath(0.1)])
    network = keras.Sequential([keras.Input((8, 8, 1)), vit, inner])
    without_stochastic_depth(network)
    rates = [
        layer.rate
        for model in (vit, inner)
        for layer in model.layers
        if isinstance(layer, (DropPath, keras.layers.Dropout))
    ]
    assert len(rates) == 6 and rates == [0.0] * 6
