import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.optimizers import LARS


def lars_reference(weights, gradients, velocities, lr, momentum, decay, eta, nesterov, adapt):
    """You et al. 2017, Algorithm 1 (coupled L2 decay; trust ratio on the decayed gradient)."""
    if adapt:
        gradients = gradients + decay * weights
        w_norm, g_norm = np.linalg.norm(weights), np.linalg.norm(gradients)
        lr = lr * (eta * w_norm / g_norm if w_norm > 0 and g_norm > 0 else 1.0)
    velocities = momentum * velocities + lr * gradients
    update = momentum * velocities + lr * gradients if nesterov else velocities
    return weights - update, velocities


@pytest.mark.parametrize("nesterov", [False, True])
def test_three_steps_match_the_numpy_reference(nesterov):
    rng = np.random.default_rng(0)
    kernel = keras.Variable(rng.normal(size=(3, 4)).astype(np.float32), name="kernel")
    bias = keras.Variable(rng.normal(size=(4,)).astype(np.float32), name="bias")
    optimizer = LARS(
        learning_rate=0.5,
        momentum=0.9,
        weight_decay=1e-2,
        trust_coefficient=0.01,
        nesterov=nesterov,
    )
    expected = {"kernel": kernel.numpy(), "bias": bias.numpy()}
    velocity = {"kernel": np.zeros((3, 4)), "bias": np.zeros(4)}
    for _ in range(3):
        grads = {"kernel": rng.normal(size=(3, 4)), "bias": rng.normal(size=(4,))}
        optimizer.apply(
            [tf.constant(grads["kernel"], tf.float32), tf.constant(grads["bias"], tf.float32)],
            [kernel, bias],
        )
        for name in ("kernel", "bias"):
            expected[name], velocity[name] = lars_reference(
                expected[name],
                grads[name],
                velocity[name],
                0.5,
                0.9,
                1e-2,
                0.01,
                nesterov,
                adapt=name == "kernel",
            )
    np.testing.assert_allclose(kernel.numpy(), expected["kernel"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias.numpy(), expected["bias"], rtol=1e-5, atol=1e-6)


def test_batch_norm_and_excluded_paths_take_plain_momentum_steps():
    optimizer = LARS(exclude=("probe",))
    layer = keras.layers.BatchNormalization()
    layer.build((None, 3))
    probe = keras.layers.Dense(2, name="probe")
    probe.build((None, 3))
    conv = keras.layers.Conv2D(2, 3)
    conv.build((None, 5, 5, 1))
    assert not optimizer.adapts(layer.gamma) and not optimizer.adapts(layer.beta)
    assert not optimizer.adapts(probe.kernel)
    assert optimizer.adapts(conv.kernel) and not optimizer.adapts(conv.bias)


def test_zero_weights_use_the_plain_learning_rate():
    kernel = keras.Variable(np.zeros((2, 2), np.float32))
    LARS(learning_rate=0.1, momentum=0.0).apply([tf.ones((2, 2))], [kernel])
    np.testing.assert_allclose(kernel.numpy(), -0.1, rtol=1e-6, atol=1e-6)


def test_trains_a_model_and_serialises():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(
        optimizer=LARS(learning_rate=0.2, weight_decay=1e-4, trust_coefficient=0.05), loss="mse"
    )
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < 0.1 * history[0]
    config = model.optimizer.get_config()
    rebuilt = LARS.from_config(config)
    assert rebuilt.get_config() == config and config["weight_decay"] == 1e-4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"momentum": 1.5}, "momentum"),
        ({"weight_decay": -1}, "weight_decay"),
        ({"trust_coefficient": "x"}, "trust_coefficient"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LARS(**kwargs)
