import keras
import numpy as np
import pytest

from keras_ssl.layers import MLPHead


def test_forward_matches_manual_computation_in_inference_mode():
    head = MLPHead(hidden_dims=(5,), output_dim=3)
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    head.build((None, 6))
    (
        dense,
        bn,
        _,
    ) = head.hidden_layers
    hidden = x @ dense.kernel.numpy()
    hidden = (hidden - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    hidden = np.maximum(hidden * bn.gamma.numpy() + bn.beta.numpy(), 0)
    expected = hidden @ head.output_layer.kernel.numpy() + head.output_layer.bias.numpy()
    np.testing.assert_allclose(head(x, training=False), expected, rtol=1e-5, atol=1e-6)


def test_output_batch_norm_standardises_in_training():
    head = MLPHead(hidden_dims=(), output_dim=4, output_batch_norm=True)
    x = np.random.default_rng(1).normal(size=(64, 3)).astype(np.float32)
    out = keras.ops.convert_to_numpy(head(x, training=True))
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-2)


def test_config_round_trip():
    head = MLPHead(hidden_dims=(7, 5), output_dim=2, synchronized=True, name="p")
    rebuilt = MLPHead.from_config(head.get_config())
    assert rebuilt.get_config() == head.get_config()
    assert len(rebuilt.hidden_layers) == 6 and rebuilt.hidden_layers[1].synchronized


def test_bad_sizes():
    with pytest.raises(ValueError, match="positive"):
        MLPHead(hidden_dims=(0,), output_dim=3)
