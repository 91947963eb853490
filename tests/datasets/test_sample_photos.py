import numpy as np
import pytest

from keras_ssl.datasets import sample_photos


def test_crops_are_rgb_uint8_deterministic_and_split_by_photo():
    x_train, x_test = sample_photos.load_data(image_size=16, train_examples=12, test_examples=5)
    assert x_train.shape == (12, 16, 16, 3) and x_test.shape == (5, 16, 16, 3)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    again = sample_photos.load_data(image_size=16, train_examples=12, test_examples=5)
    np.testing.assert_array_equal(again[0], x_train)
    np.testing.assert_array_equal(again[1], x_test)
    other = sample_photos.load_data(image_size=16, train_examples=12, test_examples=5, seed=1)
    assert not np.array_equal(other[0], x_train)
    assert not set(sample_photos.TRAIN_PHOTOS) & set(sample_photos.TEST_PHOTOS)
    # Colour photos: the channels differ.
    assert np.abs(x_train[..., 0].astype(int) - x_train[..., 2]).mean() > 5


def test_a_full_scale_crop_of_one_photo_is_the_resized_photo():
    rng = np.random.default_rng(0)
    photo = np.zeros((4, 6, 3), np.uint8)
    photo[..., 0] = 200
    crops = sample_photos.random_crops([photo], 2, 2, (1.0, 1.0), rng)
    np.testing.assert_array_equal(crops[..., 0], 200)
    np.testing.assert_array_equal(crops[..., 1:], 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 0}, "image_size.*received 0"),
        ({"train_examples": -1}, "train_examples.*received -1"),
        ({"scale": (0.5, 0.2)}, r"scale.*received \(0.5, 0.2\)"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_photos.load_data(**kwargs)
