import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment import presets
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.losses.redundancy import vicreg_terms
from keras_ssl.methods.vicreg import VICReg

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "vicreg_fashion_mnist.py"
TERMS = ("loss", "invariance", "variance", "covariance")


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {
        "projection_hidden_dim": 16,
        "projection_dim": 8,
        "synchronized_bn": True,
        "probe_classes": 3,
    }
    return VICReg(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    views = tuple(rng.random((n, 8, 8, 1), dtype=np.float32) for _ in range(2))
    return {"views": views, "labels": rng.integers(0, 3, n)}


class TestBattery(testing.MethodBattery):
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    # Global means, variances, covariances and the MSE (all-reduced sums) make every replica's
    # terms the global ones; the gradient derivation is in keras_ssl/losses/redundancy.py.
    # The replica check compares every term of each step and every weight (BatchNorm
    # statistics included).
    #
    # The loss weights (25 / 25 / 1) make its gradients ~10x SimCLR's on this toy model, and
    # the float32 rounding differences of the 2-replica step (summation order in synchronized
    # BatchNorm and all-reduces, ~1e-5 relative, the same as SimCLR's) grow with the step size.
    # A 10x smaller learning rate keeps the weight updates as large as SimCLR's in its battery,
    # so the helper's 1e-6 tolerance holds. A wrong gradient scale (e.g. 1/N from averaging
    # instead of summing) would be off by half of every update, ~1e-2 here.
    replica_optimizer = {"class_name": "SGD", "config": {"learning_rate": 5e-3, "momentum": 0.9}}

    def check_history(self, history):
        assert set(history) == {*TERMS, "probe_loss", "probe_accuracy"}
        assert all(0 <= v <= 1.0 for v in history["variance"])  # the hinge is at most gamma

    def check_restored(self, restored):
        assert isinstance(restored, VICReg) and restored.variance_weight == 25.0


def _vicreg_reference(z_a, z_b, weights=(25.0, 25.0, 1.0), gamma=1.0, epsilon=1e-4):
    """The paper's Eq. 1-6 with the official code's scaling of each term."""
    n, d = z_a.shape
    invariance = np.mean((z_a - z_b) ** 2)
    variance, covariance = [], []
    for z in (z_a, z_b):
        cov = np.cov(z, rowvar=False)  # unbiased, [d, d]
        std = np.sqrt(np.diag(cov) + epsilon)
        variance.append(np.mean(np.maximum(0.0, gamma - std)))
        covariance.append((np.sum(cov**2) - np.sum(np.diag(cov) ** 2)) / d)
    variance, covariance = np.mean(variance), np.sum(covariance)
    loss = weights[0] * invariance + weights[1] * variance + weights[2] * covariance
    return {"loss": loss, "invariance": invariance, "variance": variance, "covariance": covariance}


def test_reported_terms_are_vicreg_of_the_projections():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    twin = VICReg.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    # Each view goes through the network on its own (own BatchNorm statistics), as in the paper.
    z_a, z_b = (
        twin.projector(twin.encoder(view, training=True), training=True).numpy().astype(np.float64)
        for view in views
    )
    expected = _vicreg_reference(z_a, z_b)
    logs = model.train_on_batch({"views": views}, return_dict=True)
    for term in TERMS:
        np.testing.assert_allclose(logs[term], expected[term], rtol=1e-5, err_msg=term, atol=1e-5)


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
    assert history["loss"][-1] < 0.75 * history["loss"][0]
    # The small initial embeddings violate the variance hinge; training must lift their spread.
    assert history["variance"][-1] < history["variance"][0]


def test_default_augmenter_is_byol():
    model = make_model()
    names = [[type(layer).__name__ for layer in p] for p in model.augmenter.pipelines]
    assert "RandomSolarize" not in names[0] and "RandomSolarize" in names[1]


def test_batch_of_one_is_rejected():
    model = make_model(probe_classes=None)
    model.compile(optimizer="sgd")
    single = tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 1), np.uint8)).batch(
        1, drop_remainder=True
    )
    with pytest.raises(ValueError, match="a standard deviation needs at least 2 examples"):
        model.fit(single, epochs=1, verbose=0)


def test_bad_images_rank_raises():
    model = make_model()
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="rank 4"):
        model.fit(np.zeros((8, 8, 8), np.uint8), batch_size=8, epochs=1, verbose=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"invariance_weight": -1.0}, "`invariance_weight` must be a number >= 0; received -1.0"),
        ({"variance_weight": "25"}, "`variance_weight` must be a number >= 0; received '25'"),
        ({"covariance_weight": -0.5}, "`covariance_weight` must be a number >= 0"),
        ({"gamma": 0.0}, "`gamma` must be a number > 0; received 0.0"),
        ({"epsilon": -1e-4}, "`epsilon` must be a number > 0"),
        ({"projection_layers": 1.5}, "`projection_layers` must be an integer >= 1"),
    ],
)
def test_constructor_errors(kwargs, match):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,))
    with pytest.raises(ValueError, match=match):
        VICReg(encoder, **kwargs)


def test_three_views_are_rejected():
    model = make_model()
    views = tuple(tf.zeros((4, 8, 8, 1)) for _ in range(3))
    with pytest.raises(ValueError, match="VICReg uses exactly 2 views per image; received 3"):
        model.compute_ssl_loss(views, training=False)


def test_weights_reach_the_loss():
    model = make_model(invariance_weight=2.0, variance_weight=3.0, covariance_weight=0.5)
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    terms, features = model.compute_ssl_loss(views, training=False)
    z_a, z_b = (model.projector(model.encoder(v)) for v in views)
    expected = vicreg_terms(z_a, z_b, 2.0, 3.0, 0.5)
    for key in TERMS:
        np.testing.assert_allclose(terms[key], expected[key], rtol=1e-6, atol=1e-6)
    total = 2.0 * terms["invariance"] + 3.0 * terms["variance"] + 0.5 * terms["covariance"]
    np.testing.assert_allclose(terms["loss"], total, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(features, model.encoder(views[0]), rtol=1e-5, atol=1e-6)


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "vicreg"
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, VICReg)
    assert model.invariance_weight == 25.0 and model.covariance_weight == 1.0
