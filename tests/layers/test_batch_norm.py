import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.layers import BatchNormalization


def _pair(shape, **kwargs):
    """A Keras BatchNormalization and a keras_ssl one with the same (non-trivial) weights."""
    reference, fused = keras.layers.BatchNormalization(**kwargs), BatchNormalization(**kwargs)
    reference.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(3)
    weights = [rng.uniform(0.5, 2.0, w.shape).astype("float32") for w in reference.weights]
    reference.set_weights(weights)
    fused.set_weights(weights)
    return reference, fused


def _train_step(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 3)
    return y, tape.gradient(loss, [x, *layer.trainable_weights])


def _ops(layer, x, training):
    graph = tf.function(lambda t: layer(t, training=training)).get_concrete_function(x).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("shape", [(8, 5, 5, 6), (16, 6)])
@pytest.mark.parametrize("center, scale", [(True, True), (False, False)])
def test_equals_keras_batch_norm_in_float32(shape, center, scale):
    reference, fused = _pair(shape, momentum=0.9, epsilon=1e-5, center=center, scale=scale)
    rng = np.random.default_rng(0)
    for _ in range(3):  # moving statistics follow the same trajectory
        x = tf.constant(rng.normal(2.0, 3.0, shape).astype("float32"))
        y_ref, grads_ref = _train_step(reference, x)
        y, grads = _train_step(fused, x)
        np.testing.assert_allclose(y, y_ref, atol=1e-5)
        for g, g_ref in zip(grads, grads_ref):
            np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(fused.moving_mean, reference.moving_mean, atol=1e-6)
    np.testing.assert_allclose(
        fused.moving_variance, reference.moving_variance, rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(fused(x, training=False), reference(x, training=False), atol=1e-5)


def test_moving_variance_is_the_biased_batch_variance():
    layer = BatchNormalization(momentum=0.0)
    x = np.random.default_rng(1).normal(size=(4, 3, 3, 2)).astype("float32")
    layer(x, training=True)
    np.testing.assert_allclose(layer.moving_mean, x.mean(axis=(0, 1, 2)), atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance, x.var(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)


def test_runs_the_fused_kernel_and_the_switch_turns_it_off():
    layer = BatchNormalization()
    x = tf.zeros((2, 4, 4, 3))
    layer.build(x.shape)
    assert "FusedBatchNormV3" in _ops(layer, x, training=True)
    assert "FusedBatchNormV3" in _ops(layer, x, training=False)
    BatchNormalization.fused = False
    try:
        assert "FusedBatchNormV3" not in _ops(layer, x, training=True)
    finally:
        BatchNormalization.fused = True


def test_keeps_the_keras_computation_where_the_kernel_does_not_apply():
    x = tf.constant(np.random.default_rng(2).normal(size=(4, 5, 6)).astype("float32"))
    for kwargs in ({"synchronized": True}, {"renorm": True}, {}):  # {}: rank 3
        reference, fused = _pair(x.shape, **kwargs)
        assert "FusedBatchNormV3" not in _ops(fused, x, training=True)
        np.testing.assert_array_equal(fused(x, training=True), reference(x, training=True))
    images = tf.zeros((2, 3, 3, 4))
    assert "FusedBatchNormV3" not in _ops(BatchNormalization(axis=1), images, training=True)


def test_bfloat16_activations_stay_bfloat16_and_match_keras():
    shape = (32, 4, 4, 8)
    x = np.random.default_rng(4).normal(1.0, 2.0, shape).astype("float32")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        reference, fused = _pair(shape, momentum=0.5)
        y_ref, grads_ref = _train_step(reference, tf.constant(x, tf.bfloat16))
        y, grads = _train_step(fused, tf.constant(x, tf.bfloat16))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert y.dtype == tf.bfloat16 and fused.gamma.dtype == "float32"
    np.testing.assert_allclose(tf.cast(y, tf.float32), tf.cast(y_ref, tf.float32), atol=0.05)
    np.testing.assert_allclose(
        fused.moving_variance, reference.moving_variance, rtol=1e-2, atol=1e-4
    )
    for g, g_ref in zip(grads[1:], grads_ref[1:]):  # gamma, beta
        # bf16 gradients: 5% of the largest entry absolute, as entries can be near zero.
        np.testing.assert_allclose(g, g_ref, rtol=0.05, atol=0.05 * float(np.abs(g_ref).max()))


def test_xla_step_equals_eager_step():
    shape = (8, 4, 4, 3)
    x = tf.constant(np.random.default_rng(5).normal(size=shape).astype("float32"))
    _, eager = _pair(shape)
    _, compiled = _pair(shape)
    y = eager(x, training=True)
    y_xla = tf.function(lambda t: compiled(t, training=True), jit_compile=True)(x)
    np.testing.assert_allclose(y_xla, y, atol=1e-5)
    np.testing.assert_allclose(
        compiled.moving_variance, eager.moving_variance, rtol=1e-5, atol=1e-5
    )


def test_saved_model_round_trip_keeps_the_class_and_weights(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, BatchNormalization(momentum=0.8, name="bn")(inputs))
    x = np.random.default_rng(6).normal(size=(5, 4, 4, 3)).astype("float32")
    model(x, training=True)
    path = os.path.join(tmp_path, "bn.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    layer = restored.get_layer("bn")
    assert type(layer) is BatchNormalization and layer.momentum == 0.8
    np.testing.assert_array_equal(layer.moving_variance, model.get_layer("bn").moving_variance)
    np.testing.assert_allclose(restored(x), model(x), atol=1e-6)
