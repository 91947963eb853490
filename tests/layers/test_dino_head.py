import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.layers.dino_head import DINOHead


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0)))


def _l2(x, axis):
    return x / np.linalg.norm(x, axis=axis, keepdims=True)


def head_reference(head, x):
    """Linear -> GELU (exact) x (num_layers - 1), bottleneck, L2-normalise, unit prototypes * g."""
    for layer in head.mlp_layers:
        if isinstance(layer, keras.layers.Dense):
            x = x @ layer.kernel.numpy() + layer.bias.numpy()
        else:
            x = _gelu(x)
    x = _l2(x @ head.bottleneck.kernel.numpy() + head.bottleneck.bias.numpy(), axis=1)
    prototypes = _l2(head.prototypes.numpy(), axis=0)
    if head.prototype_scale is not None:
        prototypes = prototypes * head.prototype_scale.numpy()
    return x @ prototypes


def _head(**kwargs):
    options = {"out_dim": 11, "hidden_dim": 6, "bottleneck_dim": 4}
    head = DINOHead(**{**options, **kwargs})
    head.build((None, 5))
    return head


def _features(n=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 5)).astype(np.float32)


def test_output_matches_reference_and_is_a_cosine_similarity():
    keras.utils.set_random_seed(0)
    head = _head()
    x = _features()
    out = head(x).numpy()
    assert out.shape == (3, 11)
    np.testing.assert_allclose(out, head_reference(head, x), atol=1e-5)
    assert np.all(np.abs(out) <= 1.0 + 1e-6)
    dense = [layer for layer in head.mlp_layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [6, 6]  # 3 layers: 2 hidden + bottleneck
    names = [w.path.split("/")[-1] for w in head.trainable_weights]
    assert "prototypes" in names and "prototype_scale" not in names


def test_weight_norm_magnitude_is_fixed_to_one():
    head = _head()
    x = _features()
    before = head(x).numpy()
    head.prototypes.assign(head.prototypes * np.linspace(0.5, 5.0, 11, dtype=np.float32))
    np.testing.assert_allclose(head(x).numpy(), before, atol=1e-6)


def test_learned_magnitudes_when_norm_last_layer_is_false():
    head = _head(norm_last_layer=False)
    assert head.prototype_scale.trainable
    x = _features()
    unit = head(x).numpy()
    head.prototype_scale.assign(np.arange(1, 12, dtype=np.float32))
    np.testing.assert_allclose(head(x).numpy(), unit * np.arange(1, 12), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(head(x).numpy(), head_reference(head, x), atol=1e-5)


def test_frozen_prototypes_get_no_gradient():
    head = _head()
    x = _features()
    for freeze, frozen in ((tf.constant(True), True), (tf.constant(False), False), (None, False)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(head(x, freeze_prototypes=freeze)))
        grads = dict(
            zip(
                [w.path for w in head.trainable_weights],
                tape.gradient(loss, head.trainable_weights),
            )
        )
        prototype_grad = grads.pop(head.prototypes.path).numpy()
        assert np.all(prototype_grad == 0) == frozen
        assert all(np.any(g.numpy() != 0) for g in grads.values())


def test_batch_norm_option_and_single_layer_head():
    head = _head(batch_norm=True, synchronized=True, num_layers=2)
    norms = [
        layer for layer in head.mlp_layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(norms) == 1 and norms[0].synchronized
    linear = _head(num_layers=1)
    assert linear.mlp_layers == []
    x = _features()
    np.testing.assert_allclose(linear(x).numpy(), head_reference(linear, x), atol=1e-5)


def test_config_round_trip_gives_the_same_outputs():
    head = _head(num_layers=2, norm_last_layer=False)
    config = head.get_config()
    twin = DINOHead.from_config(config)
    twin.build((None, 5))
    twin.set_weights(head.get_weights())
    assert twin.get_config() == config
    x = _features()
    np.testing.assert_allclose(twin(x).numpy(), head(x).numpy(), atol=1e-6)
    assert head.compute_output_shape((None, 5)) == (None, 11)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"out_dim": 0}, "out_dim"),
        ({"hidden_dim": 2.5}, "hidden_dim"),
        ({"bottleneck_dim": -1}, "bottleneck_dim"),
        ({"num_layers": 0}, "num_layers"),
    ],
)
def test_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DINOHead(**kwargs)
