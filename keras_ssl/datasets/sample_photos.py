"""Random crops of scikit-image's sample colour photos: offline RGB data for colour methods.

``skimage.data`` ships a few colour photographs (BSD licence) that load without a download.
The train crops come from some photos and the test crops from others, so a test crop is
never part of a training photo.
"""

import numpy as np
import tensorflow as tf

from keras_ssl.validation import check_int

#: Photos the train and test crops come from (``skimage.data`` function names).
TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
TEST_PHOTOS = ("chelsea", "stereo_motorcycle")


def _photo(name):
    from skimage import data

    image = getattr(data, name)()
    if isinstance(image, tuple):  # stereo pairs: the left view
        image = image[0]
    return np.asarray(image, np.uint8)[..., :3]


def random_crops(photos, count, image_size, scale, rng):
    """``count`` random square crops of the photos, resized to ``image_size`` (uint8)."""
    crops = np.empty((count, image_size, image_size, 3), np.uint8)
    for index in range(count):
        photo = photos[rng.integers(len(photos))]
        height, width = photo.shape[:2]
        side = int(round(min(height, width) * rng.uniform(*scale)))
        side = max(side, 1)
        top, left = rng.integers(height - side + 1), rng.integers(width - side + 1)
        crop = photo[top : top + side, left : left + side]
        resized = tf.image.resize(crop, (image_size, image_size), antialias=True)
        crops[index] = np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)
    return crops


def load_data(image_size=32, train_examples=1024, test_examples=128, scale=(0.1, 0.4), seed=0):
    """Random RGB crops of ``skimage.data`` photos, deterministic for a seed.

    Args:
        image_size: side of the square output crops.
        train_examples: number of training crops (from :data:`TRAIN_PHOTOS`).
        test_examples: number of test crops (from :data:`TEST_PHOTOS`).
        scale: ``(min, max)`` side of a crop as a fraction of the photo's shorter side.
        seed: random seed; the same seed gives the same crops.

    Returns:
        ``(x_train, x_test)``: uint8 arrays ``[N, image_size, image_size, 3]``.

    Raises:
        ValueError: for non-positive sizes or a scale outside ``(0, 1]``.
    """
    for name, value in (
        ("image_size", image_size),
        ("train_examples", train_examples),
        ("test_examples", test_examples),
    ):
        check_int(value, name, fix=f"pass e.g. {name}=32.")
    low, high = scale
    if not 0 < low <= high <= 1:
        raise ValueError(
            f"`scale` must be (min, max) with 0 < min <= max <= 1; received {scale!r}. "
            "Fix: pass e.g. scale=(0.1, 0.4)."
        )
    rng = np.random.default_rng(seed)
    train = random_crops([_photo(n) for n in TRAIN_PHOTOS], train_examples, image_size, scale, rng)
    test = random_crops([_photo(n) for n in TEST_PHOTOS], test_examples, image_size, scale, rng)
    return train, test
