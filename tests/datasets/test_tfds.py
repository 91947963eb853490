"""Tests for keras_ssl.datasets.tfds on a tiny TFDS dataset built in a temporary folder."""

import socket

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_ssl.datasets import load_tfds

NAME = "keras_ssl_tiny_images"
TRAIN_SIZE = 6
TEST_SIZE = 3


def _example(index, varied_shape):
    """The example stored under ``index``; every feature is a function of the index."""
    rng = np.random.default_rng(index)
    return {
        "index": index,
        "image": rng.integers(0, 256, (6, 5, 3), dtype=np.uint8),
        "gray": rng.integers(0, 256, (6, 5, 1), dtype=np.uint8),
        "varied": rng.integers(0, 256, varied_shape, dtype=np.uint8),
        "label": index % 3,
        "caption": f"image {index}",
        "depth": rng.random((6, 5, 1)).astype(np.float32),
    }


def _train_example(index):
    return _example(index, (4 + index % 2, 5, 3))  # two different sizes


def _test_example(index):
    return _example(100 + index, (3, 4, 3))  # one size


class KerasSslTinyImages(tfds.core.GeneratorBasedBuilder):
    """Six train and three test examples with image, label and non-image features."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "index": tfds.features.Scalar(dtype=np.int64),
                    "image": tfds.features.Image(shape=(6, 5, 3)),
                    "gray": tfds.features.Image(shape=(6, 5, 1)),
                    "varied": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(num_classes=3),
                    "caption": tfds.features.Text(),
                    "depth": tfds.features.Tensor(shape=(6, 5, 1), dtype=np.float32),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {
            "train": self._generate_examples(_train_example, TRAIN_SIZE),
            "test": self._generate_examples(_test_example, TEST_SIZE),
        }

    def _generate_examples(self, make_example, count):
        for index in range(count):
            example = make_example(index)
            example["index"] = index
            yield index, example


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Prepares the tiny dataset once, failing if TFDS tries to open a network connection."""
    directory = tmp_path_factory.mktemp("tfds")
    attempts = []
    original_connect = socket.socket.connect

    def refuse(sock, address):
        attempts.append(address)
        raise OSError("network disabled in tests")

    socket.socket.connect = refuse
    try:
        tfds.builder(NAME, data_dir=str(directory)).download_and_prepare()
    finally:
        socket.socket.connect = original_connect
    assert attempts == []
    return str(directory)


def _order(data_dir, split):
    """The example indices in the order TFDS reads them back."""
    _, indices = load_tfds(NAME, split, data_dir, download=False, label_key="index", as_numpy=True)
    return indices


def test_dataset_yields_uint8_images_and_int32_labels_equal_to_the_stored_examples(data_dir):
    order = _order(data_dir, "train")
    assert sorted(order.tolist()) == list(range(TRAIN_SIZE))
    dataset = load_tfds(NAME, "train", data_dir, download=False)
    assert dataset.element_spec == (
        tf.TensorSpec((6, 5, 3), tf.uint8),
        tf.TensorSpec((), tf.int32),
    )
    pairs = [(image.numpy(), int(label)) for image, label in dataset]
    assert len(pairs) == TRAIN_SIZE
    for (image, label), index in zip(pairs, order):
        expected = _train_example(int(index))
        np.testing.assert_array_equal(image, expected["image"])
        assert label == expected["label"]


def test_as_numpy_stacks_the_split_and_download_true_reuses_the_prepared_copy(data_dir):
    order = _order(data_dir, "test")
    images, labels = load_tfds(
        NAME, "test", data_dir, download=True, image_key="gray", as_numpy=True
    )
    assert images.dtype == np.uint8 and images.shape == (TEST_SIZE, 6, 5, 1)
    assert labels.dtype == np.int32
    expected = [_test_example(int(index)) for index in order]
    np.testing.assert_array_equal(images, np.stack([e["gray"] for e in expected]))
    np.testing.assert_array_equal(labels, [e["label"] for e in expected])


def test_split_slicing_and_images_only(data_dir):
    order = _order(data_dir, "train")
    dataset = load_tfds(NAME, "train[:2]", data_dir, download=False, label_key=None)
    assert dataset.element_spec == tf.TensorSpec((6, 5, 3), tf.uint8)
    images, labels = load_tfds(
        NAME, "train[:2]", data_dir, download=False, label_key=None, as_numpy=True
    )
    assert labels is None
    np.testing.assert_array_equal(images, [_train_example(int(i))["image"] for i in order[:2]])
    np.testing.assert_array_equal(np.stack(list(dataset.as_numpy_iterator())), images)


def test_variable_size_images_stack_when_sizes_agree(data_dir):
    order = _order(data_dir, "test")
    dataset = load_tfds(NAME, "test", data_dir, download=False, image_key="varied")
    assert dataset.element_spec[0].shape.as_list() == [None, None, 3]
    images, labels = load_tfds(
        NAME, "test", data_dir, download=False, image_key="varied", as_numpy=True
    )
    assert images.shape == (TEST_SIZE, 3, 4, 3)
    np.testing.assert_array_equal(images, [_test_example(int(i))["varied"] for i in order])
    np.testing.assert_array_equal(labels, [_test_example(int(i))["label"] for i in order])


def test_as_numpy_rejects_images_of_different_sizes(data_dir):
    with pytest.raises(ValueError, match=r"different sizes.*\(4, 5, 3\), \(5, 5, 3\).*Fix:"):
        load_tfds(NAME, "train", data_dir, download=False, image_key="varied", as_numpy=True)


def test_missing_features_name_the_available_keys(data_dir):
    available = "caption, depth, gray, image, index, label, varied"
    with pytest.raises(ValueError, match=f"no feature 'img'.*image_key='img'.*{available}"):
        load_tfds(NAME, data_dir=data_dir, download=False, image_key="img")
    with pytest.raises(ValueError, match=f"no feature 'class'.*label_key='class'.*{available}"):
        load_tfds(NAME, data_dir=data_dir, download=False, label_key="class")


def test_features_of_the_wrong_kind_are_rejected(data_dir):
    with pytest.raises(ValueError, match=r"'depth' cannot be used as image_key.*float32.*uint8"):
        load_tfds(NAME, data_dir=data_dir, download=False, image_key="depth")
    with pytest.raises(ValueError, match=r"'caption' cannot be used as label_key.*integer"):
        load_tfds(NAME, data_dir=data_dir, download=False, label_key="caption")
    with pytest.raises(ValueError, match=r"'image' cannot be used as label_key.*integer scalar"):
        load_tfds(NAME, data_dir=data_dir, download=False, label_key="image")


def test_unprepared_dataset_without_download_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"not prepared: received download=False.*Fix:"):
        load_tfds(NAME, data_dir=str(tmp_path), download=False)
