import importlib.util
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, methods, testing
from keras_ssl.datasets import sample_photos
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.methods.split_brain import SplitBrain
from keras_ssl.pretext import color

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "split_brain_photos.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {"head_dim": 8, "synchronized_bn": True, "probe_classes": 3}
    return SplitBrain(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {"views": (rng.random((n, 8, 8, 3), dtype=np.float32),), "labels": rng.integers(0, 3, n)}


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    # Fit: the weights of both halves move. Replicas: each loss is a mean over this replica's
    # pixels (equal local batches: the mean over replicas is the global mean); synchronized
    # BatchNorm in both halves and both heads. The method keeps no state besides weights (the
    # bins are constants), so there is no state_fn: every weight, BatchNorm statistics
    # included, is compared by the helper. The export: the exported encoder takes RGB uint8
    # images, converts them to Lab inside the graph and concatenates both halves' features.
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH

    def check_history(self, history):
        assert set(history) == {
            "loss",
            "ab_loss",
            "lightness_loss",
            "ab_accuracy",
            "lightness_accuracy",
            "probe_loss",
            "probe_accuracy",
        }

    def check_restored(self, restored):
        assert isinstance(restored, SplitBrain) and restored.image_shape == (8, 8, 3)
        assert restored.encoder.input_shape == (None, 8, 8, 1)
        assert restored.ab_encoder.input_shape == (None, 8, 8, 2)


# ------------------------------------------------------------------------ paper behaviour
def numpy_cross_entropy(labels, logits):
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.take_along_axis(log_softmax, labels[..., None], -1)[..., 0]


def test_reported_loss_is_the_sum_of_both_cross_channel_classifications():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    (view,) = make_data(steps=1)["views"]
    lab = color.rgb_to_lab(view).numpy()
    ab_logits, l_logits, _ = model.cross_channel_logits(lab, training=True)
    ab_logits, l_logits = ab_logits.numpy(), l_logits.numpy()
    # H(X): one-hot on the nearest bin, written here with NumPy from the bin centres.
    distances = ((lab[..., None, 1:] - model.ab_bins) ** 2).sum(-1)
    ab_targets = np.argmin(distances, axis=-1)
    l_targets = np.minimum(np.floor(lab[..., 0] / 2.0), 49).astype(np.int64)
    ab_loss = numpy_cross_entropy(ab_targets, ab_logits).mean()
    l_loss = numpy_cross_entropy(l_targets, l_logits).mean()
    terms, features = model.compute_ssl_loss((tf.constant(view),), training=True)
    np.testing.assert_allclose(float(terms["ab_loss"]), ab_loss, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(float(terms["lightness_loss"]), l_loss, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(float(terms["loss"]), ab_loss + l_loss, rtol=1e-4, atol=1e-4)
    ab_hits = np.argmax(ab_logits, -1) == ab_targets
    l_hits = np.argmax(l_logits, -1) == l_targets
    np.testing.assert_allclose(float(terms["ab_accuracy"]), ab_hits.mean(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        float(terms["lightness_accuracy"]), l_hits.mean(), rtol=1e-6, atol=1e-6
    )
    assert ab_logits.shape == (GLOBAL_BATCH, 8, 8, 262)
    assert l_logits.shape == (GLOBAL_BATCH, 8, 8, 50)
    assert features.shape == (GLOBAL_BATCH, 16)


def test_each_half_gets_only_the_gradient_of_its_own_task():
    model = make_model(probe_classes=None)
    (view,) = make_data(steps=1)["views"]
    l_half = model.encoder.trainable_weights + model.ab_head.trainable_weights
    ab_half = model.ab_encoder.trainable_weights + model.lightness_head.trainable_weights
    assert not {id(w) for w in l_half} & {id(w) for w in ab_half}  # disjoint sub-networks
    with tf.GradientTape(persistent=True) as tape:
        terms, _ = model.compute_ssl_loss((tf.constant(view),), training=True)
    for loss, own, other in (("ab_loss", l_half, ab_half), ("lightness_loss", ab_half, l_half)):
        assert all(g is None for g in tape.gradient(terms[loss], other)), loss
        own_gradients = tape.gradient(terms[loss], own)
        assert all(g is not None and np.abs(g).sum() > 0 for g in own_gradients), loss


def test_representation_concatenates_both_halves():
    keras.utils.set_random_seed(1)
    model = make_model()
    rgb = make_data(steps=1)["views"][0]
    lab = color.rgb_to_lab(rgb).numpy()
    expected = np.concatenate(
        [
            model.encoder(lab[..., :1] / 100.0, training=False),
            model.ab_encoder((lab[..., 1:] + 128.0) / 256.0, training=False),
        ],
        axis=-1,
    )
    features = model.predict(rgb, verbose=0)
    assert features.shape == (GLOBAL_BATCH, 16) and model.feature_dim == 16
    np.testing.assert_allclose(features, expected, atol=1e-5)
    # Other colours with the same lightness: the L half's features stay, the ab half's move.
    shifted = lab.copy()
    shifted[..., 1:] = np.clip(shifted[..., 1:] * 0.3 + 5, -60, 60)
    other = model.predict(color.lab_to_rgb(shifted, clip=False).numpy(), verbose=0)
    np.testing.assert_allclose(other[:, :8], features[:, :8], atol=1e-4)
    assert np.abs(other[:, 8:] - features[:, 8:]).max() > 1e-3


def test_halves_share_the_architecture_with_separate_weights():
    model = make_model()
    assert model.ab_encoder.name == "ab_small_resnet"
    l_shapes = [w.shape for w in model.encoder.weights]
    ab_shapes = [w.shape for w in model.ab_encoder.weights]
    assert l_shapes[1:] == ab_shapes[1:] and ab_shapes[0][2] == 2 and l_shapes[0][2] == 1
    rgb = backbones.SmallResNet((8, 8, 3), widths=(4, 8))
    rebuilt = SplitBrain(rgb, head_dim=8)
    assert rebuilt.encoder.input_shape == (None, 8, 8, 1) and rebuilt.image_shape == (8, 8, 3)
    assert rebuilt.augmenter.num_views == 1


def test_colorize_and_predict_lightness_decode_with_the_annealed_mean():
    keras.utils.set_random_seed(2)
    model = make_model()
    rgb = make_data(steps=1)["views"][0][:2]
    lab = color.rgb_to_lab(rgb).numpy()
    ab_logits, l_logits, _ = model.cross_channel_logits(lab)
    ab = color.annealed_mean(ab_logits, model.ab_bins, 0.38).numpy()
    expected = color.lab_to_rgb(np.concatenate([lab[..., :1], ab], -1)).numpy()
    np.testing.assert_allclose(model.colorize(rgb), expected, atol=1e-5)
    probabilities = tf.nn.softmax(l_logits / 0.2).numpy()
    lightness = (probabilities * color.lightness_bins()[:, 0]).sum(-1, keepdims=True) / 100.0
    np.testing.assert_allclose(model.predict_lightness(rgb, 0.2), lightness, atol=1e-5)
    uint8 = np.round(rgb * 255).astype(np.uint8)
    assert model.predict_lightness(uint8).shape == (2, 8, 8, 1)


def test_trains_on_photo_crops_and_learns():
    keras.utils.set_random_seed(0)
    x_train, _ = sample_photos.load_data(image_size=8, train_examples=128, test_examples=1)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    dataset = make_ssl_dataset(x_train, batch_size=32, augmenter=model.augmenter, seed=1)
    history = model.fit(dataset, epochs=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["ab_loss"][-1] < history["ab_loss"][0] - 0.5
    assert history["lightness_loss"][-1] < history["lightness_loss"][0] - 0.5
    assert history["lightness_accuracy"][-1] > history["lightness_accuracy"][0]


def test_trains_from_its_config(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(CONFIG.stem, CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    assert config.method == "split_brain" and config.data.dataset == "tfds:cifar10"
    monkeypatch.setitem(methods.REGISTRY, "split_brain", SplitBrain)
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
    assert isinstance(model, SplitBrain) and model.ab_encoder.input_shape == (None, 8, 8, 2)
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
    with pytest.raises(ValueError, match=r"SplitBrain.colorize needs RGB.*\(2, 8, 8, 1\)"):
        model.colorize(gray[:2])
    with pytest.raises(ValueError, match=r"predict_lightness needs RGB.*\(2, 8, 8, 1\)"):
        model.predict_lightness(gray[:2])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_lightness_bins": 1}, r"num_lightness_bins.*>= 2; received 1.*Fix: use 50"),
        ({"num_lightness_bins": 50.0}, r"num_lightness_bins.*received 50.0"),
        ({"grid_size": 0}, r"grid_size.*positive.*received 0.*Fix: use 10"),
        ({"temperature": -1.0}, r"temperature.*received -1.0.*Fix: use 0.38"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_encoders_without_feature_maps_raise():
    flat = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(4)])
    with pytest.raises(ValueError, match="SplitBrain predicts a value per pixel.*Fix: use a conv"):
        SplitBrain(flat)
    odd = backbones.SmallResNet((10, 10, 1), widths=(4, 8, 8))  # 10 -> 5 -> 3 maps
    with pytest.raises(ValueError, match=r"multiple of the encoder's feature-map size \(3, 3\)"):
        SplitBrain(odd)
