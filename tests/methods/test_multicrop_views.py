import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones
from keras_ssl.augment.multicrop import multicrop
from keras_ssl.methods import SwAV
from keras_ssl.methods.multicrop_views import encode_at_any_size, size_groups


@pytest.fixture(scope="module")
def model():
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,))
    augmenter = multicrop((8, 8, 1), local_size=4, num_local=2)
    return SwAV(
        encoder,
        augmenter=augmenter,
        projection_hidden_dim=8,
        projection_dim=4,
        num_prototypes=6,
        freeze_prototypes_epochs=1,
    )


def _views(seed=0, sizes=(8, 8, 4, 4, 6)):
    rng = np.random.default_rng(seed)
    return tuple(tf.constant(rng.random((3, s, s, 1), dtype=np.float32)) for s in sizes)


def test_size_groups_are_consecutive_runs_of_one_size():
    views = _views(sizes=(4, 4, 6, 4))
    groups = size_groups(views)
    assert [len(g) for g in groups] == [2, 1, 1]
    assert groups[0][0] is views[0] and groups[2][0] is views[3]


def test_encode_crops_is_every_crop_at_its_own_size_in_crop_order(model):
    views = _views()
    features = model.encode_crops(views, training=False).numpy()
    expected = np.concatenate([encode_at_any_size(model.encoder, v, False).numpy() for v in views])
    assert features.shape == (5 * 3, model.feature_dim)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


def test_view_shapes_and_crop_count(model):
    assert model.view_shape(0) == model.view_shape(1) == (8, 8, 1)
    assert model.view_shape(2) == (None, None, 1)
    with pytest.raises(ValueError, match=r"SwAV needs 2 large crops \(then any number of small"):
        model.check_crops(_views(sizes=(8,)))
    model.check_crops(_views(sizes=(8, 8)))


def test_prototypes_get_no_gradient_while_frozen(model):
    model.plan_schedules(10, 2)
    kernel = tf.Variable(tf.ones((2, 3)))
    for step, frozen in ((9, True), (10, False)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model.prototypes_at(tf.convert_to_tensor(kernel), step))
        gradient = tape.gradient(loss, kernel)
        assert (gradient is None or not np.any(gradient.numpy())) == frozen
    assert model.uses_epoch_schedules
