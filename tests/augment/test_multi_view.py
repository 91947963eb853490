"""MultiViewAugmenter: views, seeds, foreign layers, tf.data, XLA and serialization."""

import json

import keras
import keras_cv
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.augment import (
    ColorJitter,
    MultiViewAugmenter,
    RandomApply,
    RandomGaussianBlur,
    RandomHorizontalFlip,
    RandomResizedCrop,
)
from keras_ssl.testing import two_replica_strategy

SEED = tf.constant([1, 2])


def _uint8_images(batch=6, size=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, size, size, channels), dtype=np.uint8)


def _pipeline():
    return [RandomResizedCrop(16, 16), RandomHorizontalFlip(), ColorJitter()]


def test_views_are_a_tuple_of_float_images_with_independent_randomness():
    augmenter = MultiViewAugmenter(_pipeline(), num_views=3)
    images = _uint8_images()
    views = augmenter(images, seed=SEED)
    assert isinstance(views, tuple) and len(views) == 3 == augmenter.num_views
    for view in views:
        assert view.shape == (6, 16, 16, 3) and view.dtype == tf.float32
        assert float(tf.reduce_min(view)) >= 0 and float(tf.reduce_max(view)) <= 1
    assert not np.array_equal(views[0].numpy(), views[1].numpy())
    assert not np.array_equal(views[1].numpy(), views[2].numpy())
    again = augmenter(images, seed=SEED)
    for first, second in zip(views, again):
        np.testing.assert_array_equal(first.numpy(), second.numpy())
    other = augmenter(images, seed=tf.constant([1, 3]))
    assert not np.array_equal(other[0].numpy(), views[0].numpy())


def test_uint8_input_equals_float_input():
    augmenter = MultiViewAugmenter(_pipeline(), num_views=2)
    images = _uint8_images()
    from_uint8 = augmenter(images, seed=SEED)
    from_float = augmenter(images.astype(np.float32) / np.float32(255), seed=SEED)
    for a, b in zip(from_uint8, from_float):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_views_follow_the_seed_derivation_of_their_layers():
    crop, flip = RandomResizedCrop(8, 8), RandomHorizontalFlip()
    augmenter = MultiViewAugmenter([[crop, flip], [flip]])
    images = _uint8_images().astype(np.float32) / np.float32(255)
    views = augmenter(images, seed=SEED)
    fold = tf.random.experimental.stateless_fold_in
    view_seed = fold(SEED, 0)
    expected = flip(crop(images, seed=fold(view_seed, 0)), seed=fold(view_seed, 1))
    np.testing.assert_array_equal(views[0].numpy(), expected.numpy())
    np.testing.assert_array_equal(
        views[1].numpy(), flip(images, seed=fold(fold(SEED, 1), 0)).numpy()
    )


def test_views_may_have_different_sizes():
    augmenter = MultiViewAugmenter(
        [[RandomResizedCrop(16, 16)], [RandomResizedCrop(8, 8)], [RandomResizedCrop(8, 8)]]
    )
    shapes = [tuple(v.shape) for v in augmenter(_uint8_images(), seed=SEED)]
    assert shapes == [(6, 16, 16, 3), (6, 8, 8, 3), (6, 8, 8, 3)]
    assert augmenter.compute_output_shape((None, 32, 32, 3)) == (
        (None, 16, 16, 3),
        (None, 8, 8, 3),
        (None, 8, 8, 3),
    )


def test_foreign_layers_run_inside_a_pipeline():
    images = _uint8_images()
    floats = images.astype(np.float32) / np.float32(255)
    augmenter = MultiViewAugmenter(
        [
            [keras_cv.layers.Grayscale(output_channels=3)],
            [RandomResizedCrop(8, 8), keras.layers.RandomFlip("horizontal")],
            [keras.layers.RandomFlip("horizontal"), RandomApply(keras.layers.Rescaling(0.5), 1.0)],
        ]
    )
    gray, cropped, halved = augmenter(images, seed=SEED)
    expected_gray = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(floats))
    np.testing.assert_allclose(gray.numpy(), expected_gray.numpy(), atol=1e-6)
    assert cropped.shape == (6, 8, 8, 3) and cropped.dtype == tf.float32
    # Each image is either flipped or not, then halved.
    for out, image in zip(halved.numpy(), floats):
        candidates = (image * np.float32(0.5), np.flip(image, axis=1) * np.float32(0.5))
        assert any(np.allclose(out, c, atol=1e-7) for c in candidates)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(3).map(augmenter)
    assert [tuple(v.shape) for v in next(iter(dataset))] == [(3, 16, 16, 3), (3, 8, 8, 3)] + [
        (3, 16, 16, 3)
    ]


# keras-cv 0.9's RandomColorJitter has no build(); Keras 3 warns when it builds the layer.
@pytest.mark.filterwarnings("ignore:`build\\(\\)` was called on layer 'random_color_jitter'")
def test_keras_cv_color_jitter_in_a_pipeline():
    jitter = keras_cv.layers.RandomColorJitter(
        value_range=(0, 1),
        brightness_factor=0.2,
        contrast_factor=0.2,
        saturation_factor=(0.4, 0.6),
        hue_factor=0.1,
    )
    augmenter = MultiViewAugmenter([RandomResizedCrop(12, 12), jitter], num_views=2)
    views = augmenter(_uint8_images(), seed=SEED)
    assert [tuple(v.shape) for v in views] == [(6, 12, 12, 3)] * 2
    assert all(float(tf.reduce_max(v)) <= 1.0 for v in views)


def test_tf_data_map_after_batch_and_xla():
    augmenter = MultiViewAugmenter(
        [_pipeline(), [RandomResizedCrop(8, 8), RandomGaussianBlur(3, probability=1.0)]]
    )
    images = _uint8_images(batch=8)
    dataset = (
        tf.data.Dataset.from_tensor_slices(images)
        .batch(4, drop_remainder=True)
        .map(lambda x: augmenter(x, seed=SEED), num_parallel_calls=tf.data.AUTOTUNE)
    )
    batches = list(dataset)
    eager = augmenter(images[:4], seed=SEED)
    for from_data, expected in zip(batches[0], eager):
        np.testing.assert_allclose(from_data.numpy(), expected.numpy(), atol=1e-6)
    compiled = tf.function(lambda x, s: augmenter(x, seed=s), jit_compile=True)
    for from_xla, expected in zip(compiled(images[:4], SEED), eager):
        np.testing.assert_allclose(from_xla.numpy(), expected.numpy(), atol=1e-5)
    unseeded = tf.function(lambda x: augmenter(x), jit_compile=True)(images[:4])
    assert [tuple(v.shape) for v in unseeded] == [(4, 16, 16, 3), (4, 8, 8, 3)]
    unseeded_data = list(tf.data.Dataset.from_tensor_slices(images).batch(4).map(augmenter))
    assert len(unseeded_data) == 2


@pytest.mark.parametrize("form", ["views", "pipeline"])
def test_config_round_trip_gives_identical_views(form):
    if form == "views":
        augmenter = MultiViewAugmenter(
            [_pipeline(), [RandomResizedCrop(8, 8), keras.layers.RandomFlip("horizontal")]]
        )
    else:
        augmenter = MultiViewAugmenter(_pipeline(), num_views=3)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(augmenter)))
    restored = keras.saving.deserialize_keras_object(config)
    assert restored.num_views == augmenter.num_views
    assert [[type(layer) for layer in p] for p in restored.pipelines] == [
        [type(layer) for layer in p] for p in augmenter.pipelines
    ]
    images = _uint8_images()
    keras_ssl_only = 1 if form == "views" else augmenter.num_views  # RandomFlip is unseeded
    for a, b in list(zip(restored(images, seed=SEED), augmenter(images, seed=SEED)))[
        :keras_ssl_only
    ]:
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    again = MultiViewAugmenter.from_config(augmenter.get_config())
    assert again.num_views == augmenter.num_views


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="got 2 pipelines but num_views=3.*Fix"):
        MultiViewAugmenter([_pipeline(), _pipeline()], num_views=3)
    with pytest.raises(ValueError, match="`num_views` must be an integer >= 1; received 0.*Fix"):
        MultiViewAugmenter(_pipeline(), num_views=0)
    with pytest.raises(ValueError, match="view 1 holds a function.*Fix"):
        MultiViewAugmenter([_pipeline(), [lambda x: x]])
    with pytest.raises(ValueError, match="received RandomHorizontalFlip.*Fix"):
        MultiViewAugmenter(RandomHorizontalFlip())


def test_bad_images_raise():
    augmenter = MultiViewAugmenter(_pipeline())
    with pytest.raises(ValueError, match=r"received shape \(16, 16, 3\) \(rank 3\).*Fix"):
        augmenter(_uint8_images()[0])
    with pytest.raises(ValueError, match="received dtype string.*Fix"):
        augmenter(tf.fill([2, 16, 16, 3], "x"))


def test_runs_inside_a_two_replica_train_step():
    strategy = two_replica_strategy()
    augmenter = MultiViewAugmenter(_pipeline() + [RandomGaussianBlur(3)], num_views=2)
    dataset = tf.data.Dataset.from_tensor_slices(_uint8_images(batch=8)).batch(
        8, drop_remainder=True
    )

    @tf.function
    def step(images):
        def replica_fn(batch):
            first, second = augmenter(batch)
            return tf.reduce_mean(tf.abs(first - second), axis=[1, 2, 3])

        return strategy.run(replica_fn, args=(images,))

    per_replica = step(next(iter(strategy.experimental_distribute_dataset(dataset))))
    distances = tf.concat(strategy.experimental_local_results(per_replica), axis=0).numpy()
    assert distances.shape == (8,) and (distances > 0).all()
