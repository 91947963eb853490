import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.augment import presets


def test_crop_flip_makes_independent_geometric_views():
    augmenter = presets.crop_flip((12, 12, 1), crop_scale=(0.3, 0.5), num_views=2)
    images = np.random.default_rng(0).random((6, 12, 12, 1)).astype(np.float32)
    first, second = augmenter(images, seed=tf.constant([1, 2]))
    assert first.shape == second.shape == (6, 12, 12, 1)
    assert not np.allclose(first, second)  # each view draws its own crops
    # Geometric only: every output pixel is interpolated from the image's own value range.
    assert first.numpy().min() >= images.min() - 1e-6 and first.numpy().max() <= images.max() + 1e-6
    (pipeline,) = presets.crop_flip((12, 12, 1), flip=False).pipelines
    assert [type(layer).__name__ for layer in pipeline] == ["RandomResizedCrop"]


def test_identity_returns_the_images_and_bad_view_counts_raise():
    images = np.random.default_rng(1).random((3, 8, 8, 3)).astype(np.float32)
    views = presets.identity((8, 8, 3), num_views=2)(images)
    assert len(views) == 2
    for view in views:
        np.testing.assert_array_equal(view, images)
    with pytest.raises(ValueError, match="num_views"):
        presets.crop_flip((8, 8, 1), num_views=0)


def test_moco_presets_are_the_papers_recipes():
    v1, v2 = presets.moco_v1((8, 8, 1)), presets.moco_v2((8, 8, 1))
    assert len(v1.pipelines) == len(v2.pipelines) == 2
    crop, gray, jitter, flip = v1.pipelines[0]
    assert (crop.height, crop.width, crop.scale) == (8, 8, (0.2, 1.0))
    assert gray.probability == 0.2 and flip.probability == 0.5
    assert (jitter.brightness, jitter.hue, jitter.probability) == (0.4, 0.4, 1.0)
    reference = presets.simclr((8, 8, 1), crop_scale=(0.2, 1.0), blur=True)
    assert [type(layer) for layer in v2.pipelines[0]] == [
        type(layer) for layer in reference.pipelines[0]
    ]
    assert v2.pipelines[0][0].scale == (0.2, 1.0)
