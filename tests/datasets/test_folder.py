"""Tests for keras_ssl.datasets.folder on PNG and JPEG files written to a temporary folder."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.datasets import load_image_folder
from keras_ssl.datasets.folder import image_files_dataset, list_images


def _write_png(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(image).numpy())


def _random_image(seed, shape):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def class_folder(tmp_path):
    """Two classes ('cat' with 2 images, 'dog' with 3, one in a nested folder) plus noise."""
    images = {
        "cat/b.png": _random_image(0, (6, 5, 3)),
        "cat/a.png": _random_image(1, (6, 5, 3)),
        "dog/x.png": _random_image(2, (6, 5, 3)),
        "dog/nested/y.PNG": _random_image(3, (6, 5, 3)),
        "dog/z.png": _random_image(4, (6, 5, 3)),
    }
    for name, image in images.items():
        _write_png(tmp_path / name, image)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / ".hidden.png").write_bytes(b"ignored, hidden")
    (tmp_path / ".cache").mkdir()
    # Loading order: classes sorted, then sorted paths inside each class.
    order = ["cat/a.png", "cat/b.png", "dog/nested/y.PNG", "dog/x.png", "dog/z.png"]
    return tmp_path, np.stack([images[name] for name in order]), np.array([0, 0, 1, 1, 1])


def test_class_folders_give_sorted_class_names_and_labels(class_folder):
    directory, expected_images, expected_labels = class_folder
    dataset, class_names = load_image_folder(directory)
    assert class_names == ["cat", "dog"]
    assert dataset.element_spec == (tf.TensorSpec((6, 5, 3), tf.uint8), tf.TensorSpec((), tf.int32))
    pairs = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(np.stack([image for image, _ in pairs]), expected_images)
    np.testing.assert_array_equal([label for _, label in pairs], expected_labels)


def test_as_numpy_matches_the_dataset(class_folder):
    directory, expected_images, expected_labels = class_folder
    (images, labels), class_names = load_image_folder(str(directory), as_numpy=True)
    assert class_names == ["cat", "dog"]
    assert images.dtype == np.uint8 and labels.dtype == np.int32
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)


def test_flat_folder_has_no_labels(tmp_path):
    images = [_random_image(seed, (4, 7, 3)) for seed in range(3)]
    for index, image in enumerate(images):
        _write_png(tmp_path / f"img{index}.png", image)
    (tmp_path / "README").write_text("ignored")
    dataset, class_names = load_image_folder(tmp_path)
    assert class_names is None
    assert dataset.element_spec == tf.TensorSpec((4, 7, 3), tf.uint8)
    np.testing.assert_array_equal(np.stack(list(dataset.as_numpy_iterator())), images)
    (array, labels), class_names = load_image_folder(tmp_path, as_numpy=True)
    assert labels is None and class_names is None
    np.testing.assert_array_equal(array, images)


def test_channels_convert_grayscale_and_rgb(tmp_path):
    rgb = _random_image(5, (3, 4, 3))
    gray = _random_image(6, (3, 4, 1))
    _write_png(tmp_path / "a_rgb.png", rgb)
    _write_png(tmp_path / "b_gray.png", gray)
    (images, _), _ = load_image_folder(tmp_path, channels=3, as_numpy=True)
    np.testing.assert_array_equal(images[0], rgb)
    np.testing.assert_array_equal(images[1], np.repeat(gray, 3, axis=-1))
    (images, _), _ = load_image_folder(tmp_path, channels=1, as_numpy=True)
    np.testing.assert_array_equal(images[1], gray)
    # PNG's RGB -> gray conversion: ITU-R 601 luma weights on 8-bit values.
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(images[0][..., 0].astype(np.float64), luma, atol=1.0)


def test_image_size_resizes_mixed_sizes(tmp_path):
    small = np.full((2, 2, 3), 80, np.uint8)
    large = _random_image(7, (8, 6, 3))
    _write_png(tmp_path / "a.png", small)
    _write_png(tmp_path / "b.png", large)
    dataset, _ = load_image_folder(tmp_path, image_size=(4, 3))
    assert dataset.element_spec == tf.TensorSpec((4, 3, 3), tf.uint8)
    images = np.stack(list(dataset.as_numpy_iterator()))
    np.testing.assert_array_equal(images[0], np.full((4, 3, 3), 80, np.uint8))  # constant stays
    reference = tf.image.resize(large, (4, 3), antialias=True).numpy()
    np.testing.assert_array_equal(images[1], np.clip(np.round(reference), 0, 255).astype(np.uint8))


def test_image_size_equal_to_the_file_size_keeps_pixels_exactly(tmp_path):
    image = _random_image(8, (5, 7, 3))
    _write_png(tmp_path / "a.png", image)
    (images, _), _ = load_image_folder(tmp_path, image_size=[5, 7], as_numpy=True)
    np.testing.assert_array_equal(images[0], image)


def test_jpeg_files_decode_like_tensorflow(tmp_path):
    image = _random_image(9, (8, 8, 3))
    encoded = tf.io.encode_jpeg(image, quality=95).numpy()
    (tmp_path / "photo.jpg").write_bytes(encoded)
    (tmp_path / "photo2.JPEG").write_bytes(encoded)
    (images, _), _ = load_image_folder(tmp_path, as_numpy=True)
    expected = tf.io.decode_jpeg(encoded, channels=3).numpy()
    np.testing.assert_array_equal(images, np.stack([expected, expected]))


def test_missing_folder(tmp_path):
    with pytest.raises(ValueError, match=r"does not exist.*received '.*nowhere'.*Fix:"):
        load_image_folder(tmp_path / "nowhere")


def test_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"is empty: received no \.png/\.jpg/\.jpeg files"):
        load_image_folder(tmp_path)


def test_class_folders_without_images(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    with pytest.raises(ValueError, match=r"received class subfolders \['cat', 'dog'\] holding no"):
        load_image_folder(tmp_path)


def test_empty_class_keeps_the_label_numbering(tmp_path):
    _write_png(tmp_path / "b_class" / "x.png", _random_image(10, (2, 2, 3)))
    (tmp_path / "a_class").mkdir()
    (_, labels), class_names = load_image_folder(tmp_path, as_numpy=True)
    assert class_names == ["a_class", "b_class"]
    np.testing.assert_array_equal(labels, [1])


def test_mixed_sizes_without_image_size(tmp_path):
    _write_png(tmp_path / "a.png", _random_image(11, (4, 4, 3)))
    _write_png(tmp_path / "b.png", _random_image(12, (5, 3, 3)))
    with pytest.raises(
        ValueError,
        match=r"different sizes: received \(4, 4\) \(a\.png\) and "
        r"\(5, 3\) \(b\.png\).*Fix: pass image_size",
    ):
        load_image_folder(tmp_path)


def test_images_mixed_with_class_folders(tmp_path):
    _write_png(tmp_path / "loose.png", _random_image(13, (2, 2, 3)))
    _write_png(tmp_path / "cat" / "a.png", _random_image(14, (2, 2, 3)))
    with pytest.raises(ValueError, match=r"mixes images \(loose\.png, \.\.\.\) with subfolders"):
        load_image_folder(tmp_path)


def test_file_that_is_not_an_image(tmp_path):
    (tmp_path / "fake.png").write_bytes(b"GIF89a not really")
    with pytest.raises(
        ValueError,
        match=r"Cannot read image .*fake\.png: received first bytes "
        r"474946383961206e; expected a PNG or JPEG",
    ):
        load_image_folder(tmp_path)
    (tmp_path / "fake.png").write_bytes(b"\xff\xd8 broken jpeg")
    with pytest.raises(ValueError, match=r"Cannot read image .*fake\.png"):
        load_image_folder(tmp_path)


@pytest.mark.parametrize("image_size", [(0, 4), (4,), (4.5, 4), "32", (4, 4, 3)])
def test_bad_image_size(tmp_path, image_size):
    with pytest.raises(ValueError, match=r"`image_size` must be \(height, width\).*received"):
        load_image_folder(tmp_path, image_size=image_size)


@pytest.mark.parametrize("channels", [0, 2, None])
def test_bad_channels(tmp_path, channels):
    with pytest.raises(ValueError, match=r"`channels` must be 1, 3 or 4; received"):
        load_image_folder(tmp_path, channels=channels)


def test_list_images_gives_the_loading_order_without_decoding(class_folder, tmp_path_factory):
    directory, _, expected_labels = class_folder
    paths, labels, class_names = list_images(directory)
    expected = ["cat/a.png", "cat/b.png", "dog/nested/y.PNG", "dog/x.png", "dog/z.png"]
    assert [path.relative_to(directory).as_posix() for path in paths] == expected
    assert labels == list(expected_labels) and class_names == ["cat", "dog"]
    flat = tmp_path_factory.mktemp("flat")
    _write_png(flat / "b.png", _random_image(15, (2, 2, 3)))
    (flat / "a.png").write_bytes(b"not an image: listing decodes nothing")
    assert list_images(flat) == ([flat / "a.png", flat / "b.png"], None, None)


def test_list_images_rejects_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match=r"does not exist.*received '.*nowhere'.*Fix:"):
        list_images(tmp_path / "nowhere")


def test_image_files_dataset_decodes_and_resizes_in_path_order(tmp_path):
    images = {"b.png": _random_image(16, (6, 4, 3)), "a.png": _random_image(17, (3, 5, 3))}
    for name, image in images.items():
        _write_png(tmp_path / name, image)
    paths = [tmp_path / "b.png", str(tmp_path / "a.png")]  # Path or str, in the given order
    dataset = image_files_dataset(paths, [4, 7], (6, 4), channels=1)
    assert dataset.element_spec == (tf.TensorSpec((6, 4, 1), tf.uint8), tf.TensorSpec((), tf.int32))
    (first, label_1), (second, label_2) = dataset.as_numpy_iterator()
    assert (label_1, label_2) == (4, 7)
    gray = {name: tf.io.decode_png(tf.io.encode_png(im), channels=1) for name, im in images.items()}
    np.testing.assert_array_equal(first, gray["b.png"])  # already 6x4: pixels kept exactly
    reference = tf.image.resize(gray["a.png"], (6, 4), antialias=True).numpy()
    np.testing.assert_array_equal(second, np.clip(np.round(reference), 0, 255).astype(np.uint8))
    unlabelled = image_files_dataset(paths[:1], None, (6, 4), resize=False)
    assert unlabelled.element_spec == tf.TensorSpec((6, 4, 3), tf.uint8)
    np.testing.assert_array_equal(next(unlabelled.as_numpy_iterator()), images["b.png"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"labels": [0, 1]}, r"one label per path; received 2 labels for 1 paths"),
        ({"channels": 2}, r"`channels` must be 1, 3 or 4; received 2"),
        ({"image_size": (0, 3)}, r"`image_size` must be \(height, width\).*received \(0, 3\)"),
    ],
)
def test_image_files_dataset_rejects_bad_arguments(tmp_path, kwargs, message):
    arguments = {"paths": [tmp_path / "a.png"], "labels": None, "image_size": (2, 2), **kwargs}
    with pytest.raises(ValueError, match=message):
        image_files_dataset(**arguments)
