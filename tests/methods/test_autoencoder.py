import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.losses import reconstruction_loss
from keras_ssl.methods.autoencoder import DenoisingAutoencoder
from keras_ssl.methods.step_random import step_seed
from keras_ssl.pretext import noise

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "autoencoder_fashion_mnist.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {
        "noise": "masking",
        "decoder_widths": (8, 4),
        "synchronized_bn": True,
        "probe_classes": 3,
    }
    return DenoisingAutoencoder(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {"views": (rng.random((n, 8, 8, 1), dtype=np.float32),), "labels": rng.integers(0, 3, n)}


def seed_state(model):
    return {"noise_seed": keras.ops.convert_to_numpy(model.noise_seed)}


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(seed_state)

    def check_history(self, history):
        assert set(history) == {"loss", "probe_loss", "probe_accuracy"}
        assert all(0 < v < 1 for v in history["loss"])  # BCE of [0, 1] pixels, ~ln 2 at first

    def check_restored(self, restored):
        assert isinstance(restored, DenoisingAutoencoder) and restored.noise == "masking"
        assert restored.decoder_widths == (8, 4)


def test_two_replicas_equal_one_with_gaussian_noise():
    # The corruption is drawn for the whole global batch from (seed, step) and sliced per
    # replica, so each example gets the same noise on 1 or 2 replicas; the loss is a mean of
    # per-example terms and the decoder's BatchNorm is synchronised. The battery checks this
    # for masking noise; Gaussian noise draws from another distribution.
    testing.check_replica_equivalence(
        lambda: make_model(noise="gaussian", noise_amount=0.3),
        make_data(),
        GLOBAL_BATCH,
        state_fn=seed_state,
    )


# --------------------------------------------------------------------------------- loss
def _bce_reference(images, outputs, loss):
    p = 1 / (1 + np.exp(-outputs))
    return np.mean(-(images * np.log(p) + (1 - images) * np.log(1 - p)), axis=(1, 2, 3))


def test_reconstruction_losses():
    images = np.array([[[[0.0], [1.0]], [[0.5], [0.25]]]], np.float32)  # [1, 2, 2, 1]
    outputs = np.array([[[[0.5], [0.5]], [[0.5], [0.0]]]], np.float32)
    # MSE by hand: (0.25 + 0.25 + 0 + 0.0625) / 4
    testing.run_loss_test(
        reconstruction_loss,
        {"images": images, "outputs": outputs, "loss": "mse"},
        expected=0.140625,
    )
    # BCE on zero logits is log 2 whatever the target.
    zeros = np.zeros_like(outputs)
    testing.run_loss_test(
        reconstruction_loss,
        {"images": images, "outputs": zeros, "loss": "bce"},
        expected=np.log(2.0),
    )
    rng = np.random.default_rng(0)
    testing.run_loss_test(
        reconstruction_loss,
        {
            "images": rng.random((3, 4, 4, 2)),
            "outputs": rng.normal(size=(3, 4, 4, 2)),
            "loss": "bce",
        },
        reference_fn=_bce_reference,
    )


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_loss_reconstructs_the_clean_image_from_the_corrupted_one(loss):
    keras.utils.set_random_seed(0)
    model = make_model(reconstruction_loss=loss, probe_classes=None, noise="salt_and_pepper")
    images = tf.constant(make_data(steps=1)["views"][0])
    terms, codes = model.compute_ssl_loss((images,), training=False)
    seed = step_seed(model, model.noise_seed, training=False)  # fixed outside training
    corrupted = noise.corrupt(images, "salt_and_pepper", 0.25, seed).numpy()
    assert not np.allclose(corrupted, images.numpy())
    outputs = model.decoder(model.encoder(corrupted)).numpy()
    if loss == "mse":
        expected = np.mean((images.numpy() - outputs) ** 2)
        assert outputs.min() >= 0 and outputs.max() <= 1  # sigmoid decoder
    else:
        expected = np.mean(_bce_reference(images.numpy(), outputs, loss))
    np.testing.assert_allclose(float(terms["loss"]), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        codes.numpy(), model.encoder(corrupted).numpy(), rtol=1e-5, atol=1e-5
    )


def test_plain_autoencoder_sees_the_clean_images():
    keras.utils.set_random_seed(0)
    model = make_model(noise=None, reconstruction_loss="mse", probe_classes=None)
    images = make_data(steps=1)["views"][0]
    corrupted, predictions = model.reconstruct(images)
    np.testing.assert_array_equal(corrupted, images)
    expected = model.decoder(model.encoder(images)).numpy()
    np.testing.assert_allclose(predictions, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        model.reconstruction_error(images, batch_size=3),
        np.mean((images - expected) ** 2),
        rtol=1e-5,
        atol=1e-5,
    )


def test_noise_changes_every_step():
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizer="sgd")
    images = tf.constant(make_data(steps=1)["views"][0])
    first = model.corrupt(images, _seed(model)).numpy()
    model.optimizer.iterations.assign(1)
    second = model.corrupt(images, _seed(model)).numpy()
    assert not np.array_equal(first, second)
    assert abs((first == 0).mean() - 0.25) < 0.1 and abs((second == 0).mean() - 0.25) < 0.1


def _seed(model):
    return step_seed(model, model.noise_seed, training=True)


def test_trains_and_learns_on_smooth_images():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, reconstruction_loss="mse", decoder_widths=(16, 8))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    grids = np.random.default_rng(0).random((64, 2, 2, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    before = model.reconstruction_error(images)
    history = model.fit(images, batch_size=16, epochs=15, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    assert history[-1] < 0.5 * history[0]
    # Inference mode uses BatchNorm's moving statistics, which lag after 60 steps.
    assert model.reconstruction_error(images) < 0.9 * before


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "autoencoder" and config.augment.preset == "identity"
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, DenoisingAutoencoder) and model.noise == "masking"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"noise": "blur"}, "`noise` must be one of"),
        ({"noise": "masking", "noise_amount": 0}, "fraction in \\(0, 1\\)"),
        ({"reconstruction_loss": "l1"}, "`reconstruction_loss` must be one of"),
        ({"seed": "zero"}, "`seed` must be an int or None"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_bad_evaluation_input_raises():
    model = make_model()
    with pytest.raises(ValueError, match="rank 4"):
        model.reconstruction_error(np.zeros((4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1; received 0"):
        model.reconstruction_error(np.zeros((4, 8, 8, 1), np.float32), batch_size=0)
    with pytest.raises(ValueError, match="height does not match"):
        model.reconstruct(np.zeros((4, 6, 8, 1), np.float32))
