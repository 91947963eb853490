"""Tests for keras_ssl.evaluation.features."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.evaluation import features as features_module
from keras_ssl.evaluation.features import (
    check_features,
    check_labelled_data,
    check_labels,
    extract_features,
    extract_labelled_features,
    l2_normalize,
)
from keras_ssl.testing import two_replica_strategy

HEIGHT, WIDTH, CHANNELS, DIM = 6, 5, 1, 4


def _encoder(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((HEIGHT, WIDTH, CHANNELS)),
            keras.layers.Flatten(),
            keras.layers.Dense(DIM, bias_initializer="glorot_uniform"),
        ]
    )


def _reference(encoder, images_uint8, normalize=True):
    kernel, bias = [w.numpy() for w in encoder.layers[-1].weights]
    flat = (images_uint8.astype(np.float64) / 255.0).reshape(len(images_uint8), -1)
    out = flat @ kernel + bias
    if normalize:
        out = out / np.linalg.norm(out, axis=1, keepdims=True)
    return out


def _images(count, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, HEIGHT, WIDTH, CHANNELS), dtype=np.uint8)


def test_uint8_and_float_input_match_numpy_reference():
    encoder, images = _encoder(), _images(37)
    expected = _reference(encoder, images)
    from_uint8 = extract_features(encoder, images, batch_size=10)
    from_float = extract_features(encoder, images.astype(np.float32) / 255.0, batch_size=64)
    assert from_uint8.dtype == np.float32 and from_uint8.shape == (37, DIM)
    np.testing.assert_allclose(from_uint8, expected, atol=1e-6)
    np.testing.assert_allclose(from_float, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(from_uint8, axis=1), 1.0, atol=1e-6)
    raw = extract_features(encoder, images, normalize=False)
    np.testing.assert_allclose(raw, _reference(encoder, images, normalize=False), atol=1e-5)


def test_grayscale_rank3_array_gets_channel_axis():
    encoder, images = _encoder(), _images(9)
    np.testing.assert_array_equal(
        extract_features(encoder, images[..., 0]), extract_features(encoder, images)
    )


def test_short_last_batch_is_padded_so_the_encoder_traces_once():
    encoder, images = _encoder(), _images(23)
    extract_features(encoder, images, batch_size=8)  # batches of 8, 8 and 7 (padded to 8)
    infer = features_module._inference_fn(encoder)
    assert infer.experimental_get_tracing_count() == 1
    extract_features(encoder, images, batch_size=8)
    assert infer.experimental_get_tracing_count() == 1


def test_inference_runs_with_training_false():
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential(
        [keras.Input((HEIGHT, WIDTH, CHANNELS)), keras.layers.Flatten(), keras.layers.Dropout(0.9)]
    )
    images = _images(4)
    expected = images.reshape(4, -1).astype(np.float32) / 255.0
    np.testing.assert_allclose(
        extract_features(encoder, images, normalize=False), expected, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "make_dataset",
    [
        lambda x, y: tf.data.Dataset.from_tensor_slices((x, y)),
        lambda x, y: tf.data.Dataset.from_tensor_slices((x, y)).batch(6),
        lambda x, y: tf.data.Dataset.from_tensor_slices((x[..., 0], y)),
        lambda x, y: tf.data.Dataset.from_tensor_slices((x[..., 0], y)).batch(6),
        lambda x, y: tf.data.Dataset.from_tensor_slices((x, y[:, None])).batch(6),
    ],
    ids=["unbatched", "batched", "unbatched-gray", "batched-gray", "labels-n1"],
)
def test_datasets_batched_or_not_give_array_features_and_labels(make_dataset):
    encoder, images = _encoder(), _images(17)
    labels = np.arange(17) % 3
    features, got_labels = extract_features(
        encoder, make_dataset(images, labels), batch_size=4, return_labels=True
    )
    np.testing.assert_allclose(features, _reference(encoder, images), atol=1e-6)
    np.testing.assert_array_equal(got_labels, labels)


def test_image_only_dataset_and_shuffled_dataset_stay_aligned():
    encoder, images = _encoder(), _images(20)
    expected = _reference(encoder, images)
    only_images = tf.data.Dataset.from_tensor_slices(images).batch(7)
    np.testing.assert_allclose(extract_features(encoder, only_images), expected, atol=1e-6)
    shuffled = tf.data.Dataset.from_tensor_slices((images, np.arange(20))).shuffle(20, seed=3)
    features, index = extract_labelled_features(encoder, shuffled.batch(5))
    assert not np.array_equal(index, np.arange(20))
    np.testing.assert_allclose(features, expected[index], atol=1e-6)


def test_labelled_arrays_are_returned_with_their_labels():
    encoder, images = _encoder(), _images(5)
    features, labels = extract_labelled_features(encoder, (images, [0, 1, 2, 1, 0]))
    np.testing.assert_allclose(features, _reference(encoder, images), atol=1e-6)
    np.testing.assert_array_equal(labels, [0, 1, 2, 1, 0])


def test_progress_bar_counts_images(capsys):
    extract_features(_encoder(), _images(30), batch_size=8, verbose=1)
    assert "30/30" in capsys.readouterr().out


def test_encoder_built_under_mirrored_strategy_gives_same_features():
    reference_encoder, images = _encoder(), _images(11)
    with two_replica_strategy().scope():
        distributed_encoder = _encoder(seed=5)
    distributed_encoder.set_weights(reference_encoder.get_weights())
    np.testing.assert_allclose(
        extract_features(distributed_encoder, images, batch_size=4),
        extract_features(reference_encoder, images, batch_size=4),
        atol=1e-7,
    )


def test_l2_normalize_keeps_zero_rows_at_zero():
    np.testing.assert_allclose(
        l2_normalize([[3.0, 4.0], [0.0, 0.0]]), [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6, atol=1e-6
    )


def test_bad_images_raise():
    encoder = _encoder()
    with pytest.raises(ValueError, match=r"rank 4 .*received shape \(6, 5\)"):
        extract_features(encoder, np.zeros((HEIGHT, WIDTH), np.uint8))
    with pytest.raises(ValueError, match="must be numeric"):
        extract_features(encoder, np.full((2, HEIGHT, WIDTH, 1), "a"))
    with pytest.raises(ValueError, match="received 0 images"):
        extract_features(encoder, np.zeros((0, HEIGHT, WIDTH, 1), np.uint8))
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1; received 0"):
        extract_features(encoder, _images(2), batch_size=0)
    with pytest.raises(ValueError, match="return_labels=True.*images only"):
        extract_features(encoder, _images(2), return_labels=True)
    with pytest.raises(ValueError, match="received a dict"):
        extract_features(encoder, tf.data.Dataset.from_tensor_slices({"image": _images(2)}))
    one_hot = tf.data.Dataset.from_tensor_slices((_images(4), np.eye(4))).batch(2)
    with pytest.raises(ValueError, match=r"label batch of shape \(2, 4\)"):
        extract_features(encoder, one_hot, return_labels=True)


def test_encoder_without_pooled_output_raises():
    spatial = keras.Sequential([keras.Input((HEIGHT, WIDTH, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match=r"\[batch, D\]; received .* shape \(2, 4, 3, 2\)"):
        extract_features(spatial, _images(2))


def test_check_labels_errors():
    with pytest.raises(ValueError, match="has 3 entries but `features` has 4 rows"):
        check_labels([0, 1, 2], 4)
    with pytest.raises(ValueError, match=r"\[0, num_classes=3\); received values in \[0, 5\]"):
        check_labels([0, 5], 2, num_classes=3)
    with pytest.raises(ValueError, match=r"rank 1 .*received shape \(2, 3\)"):
        check_labels(np.zeros((2, 3), int), 2)
    with pytest.raises(ValueError, match="integer class ids; received dtype float"):
        check_labels([0.5, 1.0], 2)
    np.testing.assert_array_equal(check_labels(np.array([[1.0], [2.0]]), 2), [1, 2])


def test_check_features_errors():
    with pytest.raises(ValueError, match=r"rank 2 .*received shape \(3,\)"):
        check_features(np.zeros(3))
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_features(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="is empty"):
        check_features(np.zeros((0, 3)))


def test_check_labelled_data_errors():
    with pytest.raises(ValueError, match="tuple \\(images, labels\\).*received ndarray"):
        check_labelled_data(_images(3), "train_data")
    with pytest.raises(ValueError, match="`train_data labels` has 2 entries but `train_data"):
        check_labelled_data((_images(3), [0, 1]), "train_data")
    with pytest.raises(ValueError, match="Dataset of \\(image, label\\) pairs"):
        check_labelled_data(tf.data.Dataset.from_tensor_slices(_images(3)), "test_data")
