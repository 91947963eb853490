"""Behaviour every keras_ssl augmentation layer shares: seeds, per-image randomness, value range,
tf.data, XLA, serialization and input validation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import augment
from keras_ssl.augment.seeds import fold_in, resolve_seed, uniform_per_image

LAYERS = {
    "crop": lambda: augment.RandomResizedCrop(12, 10),
    "flip": lambda: augment.RandomHorizontalFlip(0.5),
    "jitter": lambda: augment.ColorJitter(probability=1.0),
    "grayscale": lambda: augment.RandomGrayscale(0.5),
    "blur": lambda: augment.RandomGaussianBlur(5, probability=1.0),
    "solarize": lambda: augment.RandomSolarize(0.5),
    "apply": lambda: augment.RandomApply(augment.ColorJitter(probability=1.0), 0.5),
}
# Layers whose per-image parameter is continuous: identical inputs must all come out different.
CONTINUOUS = ("crop", "jitter", "blur")
# Layers that apply one fixed transform or not: identical inputs come out in exactly 2 versions.
BINARY = ("flip", "grayscale", "solarize")
SEED = tf.constant([3, 7])


def _images(batch=8, size=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (batch, size, size, channels)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_same_seed_same_output_and_other_seed_other_output(name):
    layer = LAYERS[name]()
    images = _images()
    first = layer(images, seed=SEED).numpy()
    np.testing.assert_array_equal(layer(images, seed=SEED).numpy(), first)
    np.testing.assert_array_equal(layer(images, seed=tf.constant([3, 7], tf.int64)).numpy(), first)
    assert not np.array_equal(layer(images, seed=tf.constant([4, 7])).numpy(), first)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_without_seed_calls_differ(name):
    layer = LAYERS[name]()
    images = _images(batch=32)  # 32 coin flips: equal masks have probability 2**-32
    assert not np.array_equal(layer(images).numpy(), layer(images).numpy())


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_image_gets_its_own_parameters(name):
    layer = LAYERS[name]()
    copies = np.repeat(_images(batch=1), 8, axis=0)
    out = layer(copies, seed=SEED).numpy().reshape(8, -1)
    distinct = len({row.tobytes() for row in out})
    if name in CONTINUOUS:
        assert distinct == 8
    elif name in BINARY:  # applied to some copies and not to others
        assert distinct == 2
    else:  # RandomApply(ColorJitter): the unchanged copy plus differently jittered ones
        assert distinct > 2
        assert any(np.array_equal(row, copies[0].ravel()) for row in out)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_output_is_float32_in_unit_range_for_float_and_uint8_input(name):
    layer = LAYERS[name]()
    images = _images()
    for batch in (images, np.round(images * 255).astype(np.uint8)):
        out = layer(batch, seed=SEED)
        assert out.dtype == tf.float32
        assert out.shape[0] == 8 and out.shape[-1] == 3
        assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0
    # uint8 input is exactly the float path on x / 255.
    as_uint8 = np.round(images * 255).astype(np.uint8)
    np.testing.assert_array_equal(
        layer(as_uint8, seed=SEED).numpy(),
        layer(as_uint8.astype(np.float32) / np.float32(255), seed=SEED).numpy(),
    )


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_xla_with_and_without_seed(name):
    layer = LAYERS[name]()
    images = tf.constant(_images())
    compiled = tf.function(lambda x, s: layer(x, seed=s), jit_compile=True)
    out = compiled(images, SEED)
    # Same random parameters as eager; only float rounding differs.
    np.testing.assert_allclose(out.numpy(), layer(images, seed=SEED).numpy(), atol=1e-5)
    unseeded = tf.function(lambda x: layer(x), jit_compile=True)(images)
    assert unseeded.shape == out.shape and unseeded.dtype == tf.float32
    assert float(tf.reduce_min(unseeded)) >= 0.0 and float(tf.reduce_max(unseeded)) <= 1.0


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_tf_data_map_after_batch(name):
    layer = LAYERS[name]()
    images = _images(batch=10)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(5)
    seeded = [b.numpy() for b in dataset.map(lambda x: layer(x, seed=SEED))]
    for index, batch in enumerate(seeded):
        expected = layer(images[index * 5 : index * 5 + 5], seed=SEED).numpy()
        np.testing.assert_allclose(batch, expected, atol=1e-6)
    unseeded = [b for b in dataset.map(layer, num_parallel_calls=tf.data.AUTOTUNE)]
    assert [b.shape[0] for b in unseeded] == [5, 5]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip_gives_identical_output(name):
    layer = LAYERS[name]()
    images = _images()
    restored = layer.__class__.from_config(layer.get_config())
    np.testing.assert_array_equal(
        restored(images, seed=SEED).numpy(), layer(images, seed=SEED).numpy()
    )
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"].startswith("keras_ssl>")
    revived = keras.saving.deserialize_keras_object(serialized)
    np.testing.assert_array_equal(
        revived(images, seed=SEED).numpy(), layer(images, seed=SEED).numpy()
    )


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_bad_images_raise(name):
    layer = LAYERS[name]()
    with pytest.raises(ValueError, match=r"received shape \(16, 16, 3\).*Fix"):
        layer(_images()[0])
    with pytest.raises(ValueError, match="received dtype string.*Fix"):
        layer(tf.fill([2, 16, 16, 3], "pixel"))
    with pytest.raises(ValueError, match="received dtype int32.*Fix"):
        layer(tf.zeros([2, 16, 16, 3], tf.int32))


def test_float_output_under_mixed_precision_policy():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = augment.ColorJitter(probability=1.0)
        out = layer(_images(), seed=SEED)
    finally:
        keras.config.set_dtype_policy("float32")
    assert out.dtype == tf.float32


def test_bad_seeds_raise():
    layer = augment.RandomHorizontalFlip()
    with pytest.raises(ValueError, match=r"received shape \[3\].*Fix"):
        layer(_images(), seed=tf.constant([1, 2, 3]))
    with pytest.raises(ValueError, match="received dtype float32.*Fix"):
        layer(_images(), seed=tf.constant([1.0, 2.0]))


def test_bad_probability_raises():
    for factory in (
        augment.RandomHorizontalFlip,
        augment.RandomGrayscale,
        augment.RandomSolarize,
        lambda p: augment.ColorJitter(probability=p),
        lambda p: augment.RandomGaussianBlur(3, probability=p),
        lambda p: augment.RandomApply(augment.RandomSolarize(1.0), p),
    ):
        for bad in (-0.1, 1.5, "0.5"):
            with pytest.raises(ValueError, match=r"must be a number in \[0, 1\]; received.*Fix"):
                factory(bad)


def test_seed_helpers():
    # Seeds differing only above the low 31 bits are the same seed (XLA-consistent range).
    np.testing.assert_array_equal(
        resolve_seed(tf.constant([-1, 5], tf.int64)).numpy(), [2**31 - 1, 5]
    )
    np.testing.assert_array_equal(
        resolve_seed(tf.constant([2**40 + 9, 5], tf.int64)).numpy(), [9, 5]
    )
    draws = uniform_per_image(1000, 3, tf.constant([1, 2])).numpy()
    assert draws.shape == (1000, 3) and draws.min() >= 0.0 and draws.max() < 1.0
    assert abs(draws.mean() - 0.5) < 0.02
    # Sub-seeds are deterministic, distinct, and the same under XLA.
    subs = [fold_in(tf.constant([1, 2]), i).numpy().tolist() for i in range(4)]
    assert len({tuple(s) for s in subs}) == 4
    compiled = tf.function(lambda s: uniform_per_image(4, 2, fold_in(s, 1)), jit_compile=True)(
        tf.constant([-5, 2**30])
    )
    np.testing.assert_array_equal(
        compiled.numpy(), uniform_per_image(4, 2, fold_in(tf.constant([-5, 2**30]), 1)).numpy()
    )
