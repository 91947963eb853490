import importlib.util
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, methods, testing
from keras_ssl.datasets import sample_photos
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.losses import rebalanced_cross_entropy
from keras_ssl.methods.colorization import Colorization
from keras_ssl.pretext import color

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "colorization_photos.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {"head_dim": 8, "synchronized_bn": True, "probe_classes": 3}
    return Colorization(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {"views": (rng.random((n, 8, 8, 3), dtype=np.float32),), "labels": rng.integers(0, 3, n)}


def state(model):
    return {"bin_frequencies": keras.ops.convert_to_numpy(model.bin_frequencies)}


def adapted_model(**kwargs):
    model = make_model(**kwargs)
    model.adapt(make_data(steps=1)["views"][0])  # non-uniform frequencies: weights != 1
    return model


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    # Replicas: the loss is a mean over this replica's pixels (equal local batches: the mean
    # over replicas is the global mean); synchronized BatchNorm in encoder and head; the bin
    # frequencies are fixed during training and compared as state. The export: the exported
    # encoder takes RGB uint8 images and converts them to L inside the graph.
    make_model = staticmethod(adapted_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(state)
    mixed_precision_model = staticmethod(make_model)

    def check_history(self, history):
        assert set(history) == {"loss", "bin_accuracy", "probe_loss", "probe_accuracy"}

    def check_restored(self, restored):
        assert isinstance(restored, Colorization) and restored.image_shape == (8, 8, 3)
        assert restored.encoder.input_shape == (None, 8, 8, 1)
        assert np.ptp(state(restored)["bin_frequencies"]) > 0  # the adapted, not the uniform prior


# ------------------------------------------------------------------------- paper loss
def test_reported_loss_is_the_paper_loss_on_the_lab_targets():
    keras.utils.set_random_seed(0)
    model = adapted_model(probe_classes=None)
    (view,) = make_data(steps=1)["views"]
    lab = color.rgb_to_lab(view).numpy()
    logits, _ = model.ab_logits(lab[..., :1] / 100.0, training=True)
    targets = color.soft_encode(lab[..., 1:], model.bins).numpy()
    weights = color.rebalancing_weights(state(model)["bin_frequencies"], model.bins).numpy()
    # The loss function itself is checked against NumPy in tests/losses/test_classification.py.
    expected = rebalanced_cross_entropy(targets, logits, weights).numpy().mean()
    terms, features = model.compute_ssl_loss((tf.constant(view),), training=True)
    np.testing.assert_allclose(float(terms["loss"]), expected, rtol=1e-4, atol=1e-4)
    hits = np.argmax(logits, -1) == np.argmax(targets, -1)
    np.testing.assert_allclose(float(terms["bin_accuracy"]), hits.mean(), rtol=1e-6, atol=1e-6)
    assert logits.shape == (GLOBAL_BATCH, 8, 8, 262) and features.shape == (GLOBAL_BATCH, 8)


def test_adapt_sets_the_empirical_frequencies():
    model = make_model()
    np.testing.assert_allclose(state(model)["bin_frequencies"], 1 / 262, rtol=1e-6, atol=1e-6)
    # Uniform frequencies: weights near 1 (the smoothing thins the prior at the gamut's edge).
    weights = model.class_weights().numpy()
    assert 0.95 < weights.min() < 1.0 < weights.max() < 1.2
    images = make_data(steps=1)["views"][0]
    frequencies = model.adapt(images)
    np.testing.assert_allclose(
        frequencies, color.ab_bin_frequencies(images, model.bins), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(state(model)["bin_frequencies"], frequencies, rtol=1e-6, atol=1e-6)


def test_encoder_sees_only_the_lightness():
    keras.utils.set_random_seed(1)
    model = make_model()
    rgb = make_data(steps=1)["views"][0]
    lab = color.rgb_to_lab(rgb).numpy()
    shifted = lab.copy()
    shifted[..., 1:] = np.clip(shifted[..., 1:] * 0.3 + 5, -60, 60)  # other colours, same L
    other = color.lab_to_rgb(shifted, clip=False).numpy()
    np.testing.assert_allclose(
        model.predict(rgb, verbose=0), model.predict(other, verbose=0), atol=1e-4
    )
    expected = model.encoder(lab[..., :1] / 100.0, training=False)
    np.testing.assert_allclose(model.predict(rgb, verbose=0), expected, atol=1e-5)


def test_an_rgb_encoder_is_rebuilt_for_the_lightness_channel():
    encoder = backbones.SmallResNet((8, 8, 3), widths=(4, 8))
    model = Colorization(encoder, head_dim=8)
    assert model.encoder.input_shape == (None, 8, 8, 1) and model.image_shape == (8, 8, 3)
    assert model.augmenter.num_views == 1


def test_colorize_decodes_with_the_annealed_mean():
    keras.utils.set_random_seed(2)
    model = make_model()
    rgb = make_data(steps=1)["views"][0][:2]
    lab = color.rgb_to_lab(rgb).numpy()
    logits, _ = model.ab_logits(lab[..., :1] / 100.0)
    ab = color.annealed_mean(logits, model.bins, 0.38).numpy()
    expected = color.lab_to_rgb(np.concatenate([lab[..., :1], ab], -1)).numpy()
    np.testing.assert_allclose(model.colorize(rgb), expected, atol=1e-5)
    gray = (color.rgb_to_lab(rgb).numpy()[..., :1] / 100.0).astype(np.float32)
    assert model.colorize(np.repeat(gray, 3, -1)).shape == (2, 8, 8, 3)
    assert model.colorize(gray).shape == (2, 8, 8, 3)  # grayscale input is what it is for


def test_trains_on_photo_crops_and_learns():
    keras.utils.set_random_seed(0)
    x_train, _ = sample_photos.load_data(image_size=8, train_examples=128, test_examples=1)
    model = make_model(probe_classes=None)
    model.adapt(x_train)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    dataset = make_ssl_dataset(x_train, batch_size=32, augmenter=model.augmenter, seed=1)
    history = model.fit(dataset, epochs=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0] - 0.5
    assert history["bin_accuracy"][-1] > history["bin_accuracy"][0]


def test_trains_from_its_config(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(CONFIG.stem, CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    assert config.method == "colorization" and config.data.dataset == "tfds:cifar10"
    monkeypatch.setitem(methods.REGISTRY, "colorization", Colorization)
    # No CIFAR-10 offline: photo crops (with random labels for the probes) stand in for it.
    x_train, x_test = sample_photos.load_data(image_size=8, train_examples=64, test_examples=32)
    rng = np.random.default_rng(0)
    splits = (x_train, rng.integers(0, 2, 64), x_test, rng.integers(0, 2, 32))
    monkeypatch.setattr(experiment, "load_splits", lambda data_config: splits)
    config.backbone_kwargs = {"widths": (4, 8)}
    config.method_kwargs.head_dim = 8
    config.batch_size = 32
    config.epochs = 1
    config.precision = "float32"
    config.probes.linear_epochs = 1
    config.probes.collapse_every_epochs = 0
    config.export = False
    model, history = experiment.train(config, str(tmp_path), verbose=0)
    assert isinstance(model, Colorization) and model.encoder.input_shape == (None, 8, 8, 1)
    assert np.isfinite(history["loss"][0]) and 0 <= history["knn_accuracy"][0] <= 1


# ------------------------------------------------------------------------------ errors
def test_grayscale_input_raises_naming_the_fix():
    model = make_model()
    gray = np.zeros((GLOBAL_BATCH, 8, 8, 1), np.float32)
    match = r"needs RGB images.*received `x` of shape \(8, 8, 8, 1\).*Fix: train on colour"
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=match):
        model.fit(gray, batch_size=GLOBAL_BATCH, verbose=0)
    with pytest.raises(ValueError, match=r"needs RGB images.*dataset images"):
        model.fit(tf.data.Dataset.from_tensor_slices(gray).batch(4), verbose=0)
    with pytest.raises(ValueError, match=r"needs RGB images.*\(2, 8, 8, 1\)"):
        model(gray[:2])
    with pytest.raises(ValueError, match=r"needs RGB images.*\(8, 8, 8, 1\)"):
        model.train_on_batch({"views": (gray,)})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grid_size": 0}, "grid_size.*received 0"),
        ({"sigma": -1.0}, "sigma.*received -1.0"),
        ({"temperature": 0}, "temperature.*received 0"),
        ({"neighbours": 0}, "neighbours.*received 0"),
        ({"mix": 0.0}, r"mix.*\(0, 1\]; received 0.0"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_encoders_without_feature_maps_raise():
    flat = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(4)])
    with pytest.raises(ValueError, match="needs the encoder's feature maps.*Fix: use a conv"):
        Colorization(flat)
    odd = backbones.SmallResNet((10, 10, 1), widths=(4, 8, 8))  # 10 -> 5 -> 3 maps
    with pytest.raises(ValueError, match=r"multiple of the encoder's feature-map size \(3, 3\)"):
        Colorization(odd)
