import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment import presets
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.methods.simsiam import SimSiam

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "simsiam_fashion_mnist.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {
        "projection_hidden_dim": 16,
        "projection_dim": 16,
        "projection_layers": 2,
        "prediction_hidden_dim": 8,
        "synchronized_bn": True,
        "probe_classes": 3,
    }
    return SimSiam(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    views = tuple(rng.random((n, 8, 8, 1), dtype=np.float32) for _ in range(2))
    return {"views": views, "labels": rng.integers(0, 3, n)}


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    # Replicas: no batch-level loss term, so each replica's mean over its examples, scaled by
    # 1/replicas and summed, is the global mean; synchronized BatchNorm makes the statistics
    # global.
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH

    def check_history(self, history):
        assert set(history) == {"loss", "probe_loss", "probe_accuracy"}
        assert all(-1 <= v <= 1 for v in history["loss"])  # a negative cosine similarity

    def check_restored(self, restored):
        assert isinstance(restored, SimSiam) and restored.projection_layers == 2


# ----------------------------------------------------------------------- SimSiam specifics
def _cosine(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def test_loss_is_the_symmetrised_negative_cosine_of_eq_2():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    # One pass over both views (BatchNorm statistics of the concatenated batch).
    z = model.projector(model.encoder(tf.concat(views, 0), training=True), training=True)
    p = model.predictor(z, training=True).numpy()
    z = z.numpy()
    n = GLOBAL_BATCH
    expected = np.mean(-0.5 * (_cosine(p[:n], z[n:]) + _cosine(p[n:], z[:n])))
    terms, features = model.compute_ssl_loss(views, training=True)
    np.testing.assert_allclose(float(terms["loss"]), expected, rtol=1e-5, atol=1e-5)
    assert -1.0 <= float(terms["loss"]) <= 1.0
    assert features.shape == (n, model.feature_dim)


def _projector_gradients(model, views):
    with tf.GradientTape() as tape:
        terms, _ = model.compute_ssl_loss(views, training=True)
    variables = model.projector.trainable_variables
    return [g.numpy() for g in tape.gradient(terms["loss"], variables)]


def test_stop_gradient_removes_the_target_path_from_the_gradient():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    ablation = make_model(probe_classes=None, stop_gradient=False)
    ablation.set_weights(model.get_weights())
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    np.testing.assert_allclose(
        float(model.compute_ssl_loss(views, True)[0]["loss"]),
        float(ablation.compute_ssl_loss(views, True)[0]["loss"]),
        rtol=1e-6,
        atol=1e-6,
    )  # same value ...
    kept, full = _projector_gradients(model, views), _projector_gradients(ablation, views)
    # ... but with stop-gradient the projector gets its gradient only through the predictor.
    with tf.GradientTape() as tape:
        z = model.projector(model.encoder(tf.concat(views, 0), training=True), training=True)
        p = model.predictor(z, training=True)
        target = tf.stop_gradient(z)
        n = GLOBAL_BATCH
        cos = tf.reduce_sum(
            tf.math.l2_normalize(p, 1) * tf.math.l2_normalize(tf.roll(target, n, 0), 1), 1
        )
        manual = -0.5 * tf.reduce_sum(cos) / n
    expected = tape.gradient(manual, model.projector.trainable_variables)
    for got, want in zip(kept, expected):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-7)
    assert max(np.abs(a - b).max() for a, b in zip(kept, full)) > 1e-4


def test_trains_from_the_input_pipeline_and_learns():
    keras.utils.set_random_seed(0)
    augmenter = presets.simclr((8, 8, 1), crop_scale=(0.5, 1))
    model = make_model(probe_classes=None, augmenter=augmenter)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    grids = np.random.default_rng(0).random((64, 2, 2, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    dataset = make_ssl_dataset(images, batch_size=16, augmenter=model.augmenter, seed=1)
    history = model.fit(dataset, epochs=10, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    assert history[-1] < history[0] - 0.2


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "simsiam" and config.optimizer.name == "sgd"
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, SimSiam) and model.projection_layers == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"projection_layers": 0}, "projection_layers"),
        ({"projection_layers": 2.0}, "projection_layers"),
        ({"stop_gradient": "yes"}, "stop_gradient"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_three_views_are_rejected():
    model = make_model()
    views = (tf.zeros((2, 8, 8, 1)),) * 3
    with pytest.raises(ValueError, match="exactly 2 views"):
        model.compute_ssl_loss(views, training=False)
