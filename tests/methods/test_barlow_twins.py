import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment import presets
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.losses.redundancy import barlow_twins_terms
from keras_ssl.methods.barlow_twins import BarlowTwins

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "barlow_twins_fashion_mnist.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {
        "projection_hidden_dim": 16,
        "projection_dim": 8,
        "redundancy_weight": 0.1,
        "synchronized_bn": True,
        "probe_classes": 3,
    }
    return BarlowTwins(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    views = tuple(rng.random((n, 8, 8, 1), dtype=np.float32) for _ in range(2))
    return {"views": views, "labels": rng.integers(0, 3, n)}


class TestBattery(testing.MethodBattery):
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    # Global means, variances and C (all-reduced sums) make every replica's loss the global
    # loss; the gradient derivation is in keras_ssl/losses/redundancy.py. The replica check
    # compares the loss terms of each step and every weight (BatchNorm moving statistics
    # included) after 2 steps.
    #
    # The loss is a sum over D dimensions, so its gradients are ~10x SimCLR's on this toy
    # model, and the float32 rounding differences of the 2-replica step (summation order in
    # synchronized BatchNorm and all-reduces, ~5e-6 relative, the same as SimCLR's) grow with
    # the step size. A 10x smaller learning rate keeps the weight updates as large as SimCLR's
    # in its battery, so the helper's 1e-6 tolerance holds. A wrong gradient scale (e.g. 1/N
    # from averaging instead of summing) would be off by half of every update, ~1e-2 here.
    replica_optimizer = {"class_name": "SGD", "config": {"learning_rate": 5e-3, "momentum": 0.9}}

    def check_history(self, history):
        assert {"loss", "on_diagonal", "off_diagonal", "probe_loss"} <= set(history)
        assert min(history["loss"]) > 0  # a sum of squares, 0 only at C = I

    def check_restored(self, restored):
        assert isinstance(restored, BarlowTwins)
        assert restored.redundancy_weight == 0.1 and restored.projection_layers == 3


def _cross_correlation_loss(z_a, z_b, redundancy_weight, epsilon):
    """The paper's Eq. 1-2 with the official code's BatchNorm standardisation."""
    z_a = (z_a - z_a.mean(0)) / np.sqrt(z_a.var(0) + epsilon)
    z_b = (z_b - z_b.mean(0)) / np.sqrt(z_b.var(0) + epsilon)
    c = z_a.T @ z_b / len(z_a)
    off = c - np.diag(np.diag(c))
    return np.sum((1 - np.diag(c)) ** 2) + redundancy_weight * np.sum(off**2)


def test_reported_loss_is_the_cross_correlation_loss_of_the_projections():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    twin = BarlowTwins.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    # Each view goes through the network on its own (own BatchNorm statistics), as in the paper.
    z_a, z_b = (
        twin.projector(twin.encoder(view, training=True), training=True).numpy() for view in views
    )
    expected = _cross_correlation_loss(z_a, z_b, 0.1, 1e-5)
    logs = model.train_on_batch({"views": views}, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        logs["loss"], logs["on_diagonal"] + 0.1 * logs["off_diagonal"], rtol=1e-6, atol=1e-6
    )


def test_trains_from_the_input_pipeline_and_learns():
    keras.utils.set_random_seed(0)
    augmenter = presets.simclr((8, 8, 1), crop_scale=(0.5, 1))
    model = make_model(probe_classes=None, augmenter=augmenter)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    # Smooth random images (2x2 grids upsampled) stay recognisable under crops and jitter.
    grids = np.random.default_rng(0).random((64, 2, 2, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    dataset = make_ssl_dataset(images, batch_size=16, augmenter=model.augmenter, seed=1)
    history = model.fit(dataset, epochs=10, verbose=0).history
    # C starts far from the identity (on_diagonal ~4.7 for D = 8) and must approach it.
    assert history["loss"][0] > 4.0
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert history["on_diagonal"][-1] < 0.5 * history["on_diagonal"][0]


def test_default_augmenter_is_byol():
    model = make_model()
    assert len(model.augmenter.pipelines) == 2
    names = [[type(layer).__name__ for layer in p] for p in model.augmenter.pipelines]
    assert "RandomSolarize" not in names[0] and "RandomSolarize" in names[1]


def test_batch_of_one_is_rejected():
    model = make_model(probe_classes=None)
    model.compile(optimizer="sgd")
    single = tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 1), np.uint8)).batch(
        1, drop_remainder=True
    )
    with pytest.raises(ValueError, match="received a \\(global\\) batch of 1"):
        model.fit(single, epochs=1, verbose=0)


def test_bad_images_rank_raises():
    model = make_model()
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="rank 4"):
        model.fit(np.zeros((8, 8, 8), np.uint8), batch_size=8, epochs=1, verbose=0)


def test_constructor_errors():
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,))
    with pytest.raises(
        ValueError, match="`redundancy_weight` must be a number >= 0; received -0.1"
    ):
        BarlowTwins(encoder, redundancy_weight=-0.1)
    with pytest.raises(ValueError, match="`epsilon` must be a number > 0"):
        BarlowTwins(encoder, epsilon=0.0)
    with pytest.raises(ValueError, match="`projection_layers` must be an integer >= 1"):
        BarlowTwins(encoder, projection_layers=0)
    with pytest.raises(ValueError, match="Head sizes must be positive"):
        BarlowTwins(encoder, projection_dim=0)


def test_three_views_are_rejected():
    model = make_model()
    views = tuple(tf.zeros((4, 8, 8, 1)) for _ in range(3))
    with pytest.raises(ValueError, match="exactly 2 views per image; received 3"):
        model.compute_ssl_loss(views, training=False)


def test_projector_has_the_requested_layers():
    model = make_model(projection_hidden_dim=12, projection_dim=6, projection_layers=3)
    dense = [w.shape for w in model.projector.weights if w.path.endswith("kernel")]
    assert dense == [(8, 12), (12, 12), (12, 6)]
    assert len(model.projector.hidden_layers) == 6  # (Dense, BN, ReLU) x 2


def test_loss_terms_match_the_loss_function_on_one_batch():
    # compute_ssl_loss returns barlow_twins_terms of the projections (inference mode here).
    model = make_model()
    views = tuple(tf.constant(v[:6]) for v in make_data(steps=1)["views"])
    terms, features = model.compute_ssl_loss(views, training=False)
    z_a, z_b = (model.projector(model.encoder(v)) for v in views)
    expected = barlow_twins_terms(z_a, z_b, 0.1)
    for key in model.loss_terms:
        np.testing.assert_allclose(terms[key], expected[key], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(features, model.encoder(views[0]), rtol=1e-5, atol=1e-6)


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "barlow_twins"
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, BarlowTwins)
    assert model.redundancy_weight == 5e-3 and model.projection_layers == 3
