import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.backbones.vit import (
    ClassToken,
    PatchEmbedding,
    ViT,
    ViTSmall,
    ViTTiny,
    bicubic_resize_matrix,
)
from keras_ssl.layers import DropPath


def _tiny(input_shape=(8, 8, 1), **kwargs):
    options = {"patch_size": 4, "dim": 16, "depth": 2, "num_heads": 2}
    return ViTTiny(input_shape, **{**options, **kwargs})


def _images(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    variance = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + 1e-6) * layer.gamma.numpy() + layer.beta.numpy()


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0)))


def _dense(x, layer):
    return x @ layer.kernel.numpy() + layer.bias.numpy()


def _attention(x, layer):
    q, k, v = (
        np.einsum("btd,dhk->bthk", x, dense.kernel.numpy()) + dense.bias.numpy()
        for dense in (layer._query_dense, layer._key_dense, layer._value_dense)
    )
    scores = np.einsum("bqhk,bthk->bhqt", q, k) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = np.einsum("bhqt,bthk->bqhk", weights, v)
    output = layer._output_dense
    return np.einsum("bqhk,hkd->bqd", heads, output.kernel.numpy()) + output.bias.numpy()


def vit_reference(model, images, depth):
    """ViT forward pass written from Dosovitskiy et al. 2021, Eq. 1-4 (pre-norm blocks)."""
    embedding = model.get_layer("patch_embedding")
    p, dim = embedding.patch_size, embedding.dim
    batch, height, width, channels = images.shape
    grid = (height // p, width // p)
    patches = images.reshape(batch, grid[0], p, grid[1], p, channels)
    patches = patches.transpose(0, 1, 3, 2, 4, 5).reshape(batch, grid[0] * grid[1], -1)
    kernel = embedding.projection.kernel.numpy().reshape(-1, dim)
    tokens = patches @ kernel + embedding.projection.bias.numpy()
    position = embedding.position_embedding.numpy()[0]
    if grid != embedding.grid_size:  # resample the patch positions, keep the class position
        table = position[1:].reshape(*embedding.grid_size, dim)
        rows = bicubic_resize_matrix(embedding.grid_size[0], grid[0])
        columns = bicubic_resize_matrix(embedding.grid_size[1], grid[1])
        table = np.einsum("ih,jw,hwd->ijd", rows, columns, table).reshape(-1, dim)
        position = np.concatenate([position[:1], table])
    class_token = np.broadcast_to(embedding.class_token.numpy(), (batch, 1, dim))
    x = np.concatenate([class_token, tokens], axis=1) + position
    for index in range(1, depth + 1):
        norm1, attention, norm2, mlp1, mlp2 = (
            model.get_layer(f"block{index}_{suffix}")
            for suffix in ("norm1", "attention", "norm2", "mlp1", "mlp2")
        )
        x = x + _attention(_layer_norm(x, norm1), attention)
        x = x + _dense(_gelu(_dense(_layer_norm(x, norm2), mlp1)), mlp2)
    return _layer_norm(x[:, 0], model.get_layer("norm"))


@pytest.mark.parametrize(
    "fn, timm_params, timm_head",
    [(ViTTiny, 5_717_416, 193_000), (ViTSmall, 22_050_664, 385_000)],
)
def test_standard_sizes_match_published_parameter_counts(fn, timm_params, timm_head):
    # timm's deit_tiny / vit_small patch16_224 counts minus their 1000-way classifier.
    model = fn((224, 224, 3))
    assert model.output_shape == (None, 192 if fn is ViTTiny else 384)
    count = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert count == timm_params - timm_head


def test_forward_matches_reference_implementation():
    keras.utils.set_random_seed(0)
    model = _tiny((8, 12, 3), depth=2)
    images = _images((3, 8, 12, 3))
    features = model(images).numpy()
    assert features.shape == (3, 16)
    np.testing.assert_allclose(features, vit_reference(model, images, depth=2), atol=2e-5)


def test_other_sizes_resample_position_embeddings_bicubically():
    keras.utils.set_random_seed(1)
    model = _tiny((16, 16, 1), depth=1)
    small = _images((2, 8, 8, 1))
    out = model.call(small, training=False).numpy()
    np.testing.assert_allclose(out, vit_reference(model, small, depth=1), atol=2e-5)
    # XLA (TensorFlow's bicubic resize has no XLA kernel; the matrix form compiles).
    compiled = tf.function(lambda x: model.call(x, training=False), jit_compile=True)
    np.testing.assert_allclose(compiled(small).numpy(), out, atol=1e-5)
    embedding = model.get_layer("patch_embedding")
    np.testing.assert_array_equal(
        embedding.position_embeddings((4, 4)).numpy(), embedding.position_embedding.numpy()
    )


def test_bicubic_resize_matrix_hand_values():
    # 4 -> 2: samples at 0.5 and 2.5; a = -0.75 weights (-3/32, 19/32, 19/32, -3/32), with the
    # out-of-range taps clamped onto the border pixel.
    expected = np.array([[0.5, 0.59375, -0.09375, 0.0], [0.0, -0.09375, 0.59375, 0.5]], np.float32)
    np.testing.assert_allclose(bicubic_resize_matrix(4, 2), expected, atol=1e-7)
    np.testing.assert_allclose(bicubic_resize_matrix(5, 5), np.eye(5), atol=1e-7)
    np.testing.assert_allclose(bicubic_resize_matrix(3, 7).sum(axis=1), 1.0, atol=1e-6)


def test_drop_path_rates_rise_linearly_over_the_blocks():
    model = _tiny(depth=3, drop_path_rate=0.2)
    rates = {layer.name: layer.rate for layer in model.layers if isinstance(layer, DropPath)}
    assert rates == pytest.approx(
        {
            "block2_drop_path1": 0.1,
            "block2_drop_path2": 0.1,
            "block3_drop_path1": 0.2,
            "block3_drop_path2": 0.2,
        }
    )


def test_keras_round_trip(tmp_path):
    model = _tiny()
    path = os.path.join(tmp_path, "vit.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    images = _images((2, 8, 8, 1))
    np.testing.assert_allclose(restored(images), model(images), atol=1e-6)
    assert isinstance(restored.get_layer("class_token"), ClassToken)
    layer = PatchEmbedding.from_config(model.get_layer("patch_embedding").get_config())
    assert (layer.patch_size, layer.dim) == (4, 16)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_shape": (28, 28)}, "input_shape"),
        ({"input_shape": (28, 28, 1), "patch_size": 8}, "multiple of `patch_size`"),
        ({"input_shape": (28, 28, 1), "dim": 10, "num_heads": 3}, "multiple of `num_heads`"),
        ({"input_shape": (28, 28, 1), "patch_size": 0}, "patch_size"),
        ({"input_shape": (28, 28, 1), "depth": 0}, "depth"),
        ({"input_shape": (28, 28, 1), "num_heads": 0}, "num_heads"),
        ({"input_shape": (28, 28, 1), "drop_path_rate": 1.0}, "drop_path_rate"),
    ],
)
def test_bad_arguments(kwargs, match):
    options = {"patch_size": 4, "dim": 16, "depth": 1, "num_heads": 2}
    with pytest.raises(ValueError, match=match):
        ViT(**{**options, **kwargs})


def test_sizes_that_are_not_a_multiple_of_the_patch_are_rejected_at_call_time():
    model = _tiny()
    with pytest.raises(ValueError, match="multiples of the patch size 4"):
        model.call(_images((1, 6, 6, 1)), training=False)
