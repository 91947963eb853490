"""Tests for the segmentation sets: canvases, image/mask folders and TFDS segmentation sets."""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_ssl.datasets.segmentation import (
    fashion_mnist_canvases,
    load_segmentation_folder,
    load_tfds_segmentation,
    make_canvases,
    paint_canvas,
)


def _pool(count=5, size=6, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, size, size), dtype=np.uint8)
    return images, np.arange(count) % 10


def test_canvases_equal_paint_canvas_on_the_same_draws():
    pool, labels = _pool()
    images, masks, draws = make_canvases(
        pool, labels, 20, canvas_size=10, garments=(1, 3), seed=3, return_draws=True
    )
    assert images.shape == (20, 10, 10, 1) and masks.shape == (20, 10, 10)
    assert images.dtype == np.uint8 and masks.dtype == np.uint8
    assert set(np.unique(draws["counts"])) <= {1, 2, 3}
    for i in range(20):
        count = draws["counts"][i]
        chosen = draws["indices"][i, :count]
        image, mask = paint_canvas(
            pool[chosen], labels[chosen], draws["positions"][i, :count], canvas_size=10
        )
        np.testing.assert_array_equal(images[i, ..., 0], image)
        np.testing.assert_array_equal(masks[i], mask)


def test_canvases_are_deterministic_by_seed():
    pool, labels = _pool()
    first = make_canvases(pool, labels, 8, canvas_size=12, seed=1)
    again = make_canvases(pool, labels, 8, canvas_size=12, seed=1)
    other = make_canvases(pool, labels, 8, canvas_size=12, seed=2)
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[1], other[1])


def test_fashion_mnist_canvases_labels_and_splits():
    images, masks = fashion_mnist_canvases("train", 2000, seed=0)
    assert images.shape == (2000, 56, 56, 1) and masks.shape == (2000, 56, 56)
    assert masks.max() <= 10 and set(np.unique(masks)) == set(range(11))
    # Labelled pixels hold a garment intensity above the threshold; background pixels are 0.
    assert (images[..., 0][masks > 0] > 32).all() and (images[..., 0][masks == 0] == 0).all()
    test_images, _ = fashion_mnist_canvases("test", 50, seed=0)
    assert not np.array_equal(test_images, images[:50])


def test_canvas_errors():
    pool, labels = _pool()
    with pytest.raises(ValueError, match=r"received \(3, 2\).*Fix"):
        make_canvases(pool, labels, 4, canvas_size=10, garments=(3, 2))
    with pytest.raises(ValueError, match="smaller than the 6x6 garments"):
        make_canvases(pool, labels, 4, canvas_size=5)
    with pytest.raises(ValueError, match="received 0"):
        make_canvases(pool, labels, 0)
    with pytest.raises(ValueError, match="garment pool"):
        make_canvases(pool, labels[:2], 4)
    with pytest.raises(ValueError, match="received 'validation'"):
        fashion_mnist_canvases("validation", 4)


def _write_pair(root, stem, image, mask, mask_mode="L"):
    (root / "images").mkdir(exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    Image.fromarray(image).save(root / "images" / f"{stem}.png")
    Image.fromarray(mask, mode="L").convert(mask_mode).save(root / "masks" / f"{stem}.png")


def test_folder_loader_reads_pairs_in_name_order(tmp_path):
    rng = np.random.default_rng(0)
    pairs = {
        stem: (rng.integers(0, 256, (4, 6, 3), dtype=np.uint8), rng.integers(0, 3, (4, 6)))
        for stem in ("b", "a")
    }
    for stem, (image, mask) in pairs.items():
        _write_pair(tmp_path, stem, image, mask.astype(np.uint8))
    images, masks = load_segmentation_folder(tmp_path)
    np.testing.assert_array_equal(images, np.stack([pairs["a"][0], pairs["b"][0]]))
    np.testing.assert_array_equal(masks, np.stack([pairs["a"][1], pairs["b"][1]]))
    images, masks = load_segmentation_folder(tmp_path, image_size=(8, 12), channels=1)
    assert images.shape == (2, 8, 12, 1)
    np.testing.assert_array_equal(masks[0], np.repeat(np.repeat(pairs["a"][1], 2, 0), 2, 1))


def test_folder_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="'images/' and 'masks/'"):
        load_segmentation_folder(tmp_path)
    image = np.zeros((4, 4), np.uint8)
    _write_pair(tmp_path, "a", image, image)
    Image.fromarray(image).save(tmp_path / "images" / "b.png")
    with pytest.raises(ValueError, match=r"unpaired names \['b'\]"):
        load_segmentation_folder(tmp_path)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "masks" / "b.png")
    with pytest.raises(ValueError, match="mode RGB; expected a single-channel"):
        load_segmentation_folder(tmp_path)
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "masks" / "b.png")
    with pytest.raises(ValueError, match="differ in size"):
        load_segmentation_folder(tmp_path)
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "images" / "b.png")
    with pytest.raises(ValueError, match="different sizes"):
        load_segmentation_folder(tmp_path)


def test_tfds_segmentation_on_mock_data():
    with tfds.testing.mock_data(num_examples=3):
        images, masks = load_tfds_segmentation("oxford_iiit_pet", "train", image_size=(16, 20))
        raw = next(iter(tfds.load("oxford_iiit_pet", split="train")))
    assert images.shape == (3, 16, 20, 3) and images.dtype == np.uint8
    assert masks.shape == (3, 16, 20) and masks.dtype == np.uint8
    # Nearest-neighbour resizing keeps mask values from the stored mask.
    assert set(np.unique(masks[0])) <= set(np.unique(raw["segmentation_mask"].numpy()))
    with pytest.raises(ValueError, match="no feature"), tfds.testing.mock_data(num_examples=1):
        load_tfds_segmentation("oxford_iiit_pet", mask_key="mask")
    with pytest.raises(ValueError, match="received 64"):
        load_tfds_segmentation("oxford_iiit_pet", image_size=64)
