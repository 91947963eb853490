import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.layers.masked_conv import MaskedConv2D, causal_context, causal_context_layers


def numpy_masked_conv(x, full_kernel, bias, include_center_row):
    """Reference: "same" cross-correlation with the kernel rows below the centre (and the
    centre row itself when excluded) set to zero, written as explicit loops."""
    kh, kw = full_kernel.shape[:2]
    mask = np.zeros((kh, kw, 1, 1), np.float32)
    mask[: kh // 2 + (1 if include_center_row else 0)] = 1.0
    kernel = full_kernel * mask
    batch, height, width, _ = x.shape
    padded = np.pad(x, [(0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)])
    out = np.zeros((batch, height, width, kernel.shape[-1]), np.float64)
    for r in range(height):
        for c in range(width):
            window = padded[:, r : r + kh, c : c + kw]
            out[:, r, c] = np.einsum("bhwi,hwio->bo", window, kernel)
    return out + bias


@pytest.mark.parametrize(
    "kernel_size, include_center_row", [(3, True), ((5, 3), True), (3, False), ((5, 1), False)]
)
def test_equals_a_same_conv_with_the_lower_kernel_rows_masked(kernel_size, include_center_row):
    keras.utils.set_random_seed(0)
    layer = MaskedConv2D(4, kernel_size, include_center_row=include_center_row)
    x = np.random.default_rng(0).normal(size=(2, 6, 5, 3)).astype(np.float32)
    y = np.asarray(layer(x))
    kh, kw = layer.kernel_size
    stored = np.asarray(layer.kernel)
    assert stored.shape == (layer.visible_rows, kw, 3, 4)
    full = np.concatenate([stored, np.zeros((kh - layer.visible_rows, kw, 3, 4))], axis=0)
    bias = np.random.default_rng(1).normal(size=4).astype(np.float32)
    layer.bias.assign(bias)
    y = np.asarray(layer(x))
    np.testing.assert_allclose(y, numpy_masked_conv(x, full, bias, include_center_row), atol=1e-5)


@pytest.mark.parametrize("include_center_row", [True, False])
def test_no_information_flows_up_from_lower_rows(include_center_row):
    keras.utils.set_random_seed(1)
    stack = keras.Sequential(
        [
            keras.Input((7, 6, 2)),
            MaskedConv2D(3, 3, include_center_row=include_center_row),
            keras.layers.ReLU(),
            MaskedConv2D(3, 5),
        ]
    )
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 7, 6, 2)).astype(np.float32)
    base = np.asarray(stack(x))
    last_seen = 0 if include_center_row else -1  # output row r sees input rows <= r + last_seen
    for r in range(7):
        changed = x.copy()
        changed[:, r + last_seen + 1 :] = rng.normal(size=changed[:, r + last_seen + 1 :].shape)
        out = np.asarray(stack(changed))
        np.testing.assert_array_equal(out[:, : r + 1], base[:, : r + 1], err_msg=f"row {r}")
        if r + 1 < 7:
            # ... while the rows below do see the change (the test is not vacuous).
            assert not np.allclose(out[:, r + 1 :], base[:, r + 1 :])


def test_gradient_of_a_row_is_zero_for_the_rows_below():
    keras.utils.set_random_seed(2)
    layer = MaskedConv2D(2, 3)
    x = tf.constant(np.random.default_rng(3).normal(size=(1, 5, 4, 2)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        row_two = tf.reduce_sum(layer(x)[:, 2] ** 2)
    gradient = np.asarray(tape.gradient(row_two, x))
    assert np.all(gradient[:, 3:] == 0)
    assert np.any(gradient[:, 2] != 0) and np.any(gradient[:, 1] != 0)


def test_runs_under_xla_and_round_trips_its_config():
    layer = MaskedConv2D(3, (5, 3), include_center_row=False, use_bias=False, name="masked")
    x = np.random.default_rng(4).normal(size=(2, 4, 4, 2)).astype(np.float32)
    expected = np.asarray(layer(x))
    np.testing.assert_allclose(tf.function(layer, jit_compile=True)(x), expected, atol=1e-6)
    assert layer.compute_output_shape((None, 4, 4, 2)) == (None, 4, 4, 3)
    config = layer.get_config()
    rebuilt = MaskedConv2D.from_config(config)
    assert rebuilt.get_config() == config
    rebuilt.build((None, 4, 4, 2))
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_array_equal(rebuilt(x), expected)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"filters": 0}, "filters.*positive int; received 0"),
        ({"filters": 4, "kernel_size": 4}, "kernel_size.*odd.*received 4"),
        ({"filters": 4, "kernel_size": (3, 0)}, r"kernel_size.*received \(3, 0\)"),
        ({"filters": 4, "kernel_size": 1, "include_center_row": False}, "at least 3 rows tall"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskedConv2D(**kwargs)


def test_bad_input_rank_raises():
    with pytest.raises(ValueError, match="rank 4"):
        MaskedConv2D(2)(np.zeros((3, 4, 2), np.float32))


def test_causal_context_is_the_residual_stack_of_masked_convolutions():
    keras.utils.set_random_seed(2)
    projection, masked, mixers = causal_context_layers(4, 2, 3, input_dim=3, prefix="ctx")
    assert projection.name == "ctx_projection"
    assert [layer.name for layer in masked] == ["ctx_masked_conv_0", "ctx_masked_conv_1"]
    assert [layer.name for layer in mixers] == ["ctx_mix_0", "ctx_mix_1"]
    x = np.random.default_rng(5).normal(size=(2, 5, 4, 3)).astype(np.float32)
    context = np.asarray(causal_context(x, masked, mixers, projection))
    expected = projection(x)
    for conv, mixer in zip(masked, mixers):  # c + mix(relu(masked(relu(c)))) per block
        expected = expected + mixer(tf.nn.relu(conv(tf.nn.relu(expected))))
    np.testing.assert_allclose(context, expected, rtol=1e-6, atol=1e-6)
    assert context.shape == (2, 5, 4, 4)
    # Input channels already equal to the context's (or not given): no projection.
    assert causal_context_layers(4, 1, input_dim=4)[0] is None
    assert causal_context_layers(4, 1)[0] is None


def test_causal_context_rows_ignore_the_rows_below():
    keras.utils.set_random_seed(3)
    _, masked, mixers = causal_context_layers(3, 3, 3)
    x = np.random.default_rng(6).normal(size=(2, 6, 4, 3)).astype(np.float32)
    base = np.asarray(causal_context(x, masked, mixers))
    for r in range(5):
        changed = x.copy()
        changed[:, r + 1 :] += 1.0
        new = np.asarray(causal_context(changed, masked, mixers))
        np.testing.assert_array_equal(new[:, : r + 1], base[:, : r + 1])
        assert not np.allclose(new[:, r + 1 :], base[:, r + 1 :])
