import math
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.losses import ReconstructionNLL, gaussian_kl, reconstruction_nll
from keras_ssl.methods.step_random import draw_noise, global_batch_noise
from keras_ssl.methods.vae import VAE

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "vae_fashion_mnist.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {
        "latent_dim": 4,
        "decoder_widths": (8, 4),
        "synchronized_bn": True,
        "seed": 3,
        "probe_classes": 3,
    }
    return VAE(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {
        "views": (rng.random((n, 8, 8, 1), dtype=np.float32),),
        "labels": rng.integers(0, 3, n),
    }


def vae_state(model):
    return {"noise_seed": keras.ops.convert_to_numpy(model.noise_seed)}


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    # Replicas: per-example terms averaged per replica (replica mean = global mean);
    # synchronized BN in the backbone and decoder; eps drawn for the global batch and sliced
    # per replica. The export serves mu (the representation).
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(vae_state)

    def check_history(self, history):
        assert set(history) == {"loss", "reconstruction", "kl", "probe_loss", "probe_accuracy"}
        assert all(v >= 0 for v in history["kl"])

    def check_restored(self, restored):
        assert isinstance(restored, VAE) and restored.latent_dim == 4 and restored.seed == 3


# ------------------------------------------------------------------------------- losses
def test_gaussian_kl_closed_form_and_numpy_reference():
    def reference(mean, log_variance):
        return 0.5 * np.sum(np.exp(log_variance) + mean**2 - 1 - log_variance, axis=-1)

    # Row 1: the prior itself (KL 0). Row 2: 0.5 * ((1 + 1 - 1 - 0) + (2 + 4 - 1 - ln 2)).
    mean = np.array([[0.0, 0.0], [1.0, 2.0]], np.float32)
    log_variance = np.array([[0.0, 0.0], [0.0, math.log(2.0)]], np.float32)
    np.testing.assert_allclose(
        gaussian_kl(mean, log_variance), [0.0, 3.0 - 0.5 * math.log(2)], rtol=1e-6, atol=1e-6
    )
    testing.run_loss_test(
        gaussian_kl,
        {"mean": mean, "log_variance": log_variance},
        expected=(3.0 - 0.5 * math.log(2)) / 2,
        reference_fn=reference,
    )
    rng = np.random.default_rng(0)
    inputs = {"mean": rng.normal(size=(5, 3)), "log_variance": rng.normal(size=(5, 3))}
    testing.run_loss_test(gaussian_kl, inputs, reference_fn=reference)
    # The KL is even in the mean.
    np.testing.assert_allclose(
        gaussian_kl(-inputs["mean"], inputs["log_variance"]),
        reference(**inputs),
        rtol=1e-5,
        atol=1e-5,
    )


def _bernoulli_reference(images, outputs, likelihood, observation_std):
    p = 1 / (1 + np.exp(-outputs))
    nll = -(images * np.log(p) + (1 - images) * np.log(1 - p))
    return nll.reshape(len(images), -1).sum(1)


def _gaussian_reference(images, outputs, likelihood, observation_std):
    nll = -np.log(
        np.exp(-((images - outputs) ** 2) / (2 * observation_std**2))
        / (observation_std * np.sqrt(2 * np.pi))
    )
    return nll.reshape(len(images), -1).sum(1)


def test_bernoulli_reconstruction_nll():
    # Logit 0 is p = 1/2 for any target: ln 2 nats per pixel, 4 pixels per image.
    zeros = {
        "images": np.array([[[[0.0], [1.0]], [[0.3], [1.0]]]], np.float32),
        "outputs": np.zeros((1, 2, 2, 1), np.float32),
        "likelihood": "bernoulli",
        "observation_std": 1.0,
    }
    testing.run_loss_test(reconstruction_nll, zeros, expected=4 * math.log(2))
    rng = np.random.default_rng(1)
    inputs = {
        "images": rng.random((3, 4, 4, 1)).astype(np.float32),
        "outputs": rng.normal(size=(3, 4, 4, 1)).astype(np.float32) * 3,
        "likelihood": "bernoulli",
        "observation_std": 1.0,
    }
    testing.run_loss_test(
        reconstruction_nll,
        inputs,
        reference_fn=_bernoulli_reference,
        loss_object=ReconstructionNLL("bernoulli"),
    )


def test_gaussian_reconstruction_nll():
    # A perfect mean leaves only the normaliser: 4 pixels * (ln 0.5 + 0.5 ln 2 pi).
    images = np.full((1, 2, 2, 1), 0.25, np.float32)
    exact = {"images": images, "outputs": images, "likelihood": "gaussian", "observation_std": 0.5}
    testing.run_loss_test(
        reconstruction_nll, exact, expected=4 * (math.log(0.5) + 0.5 * math.log(2 * math.pi))
    )
    rng = np.random.default_rng(2)
    inputs = {
        "images": rng.random((3, 4, 4, 1)).astype(np.float32),
        "outputs": rng.random((3, 4, 4, 1)).astype(np.float32),
        "likelihood": "gaussian",
        "observation_std": 0.5,
    }
    testing.run_loss_test(
        reconstruction_nll,
        inputs,
        reference_fn=_gaussian_reference,
        swap=("images", "outputs"),  # the squared error is symmetric
        loss_object=ReconstructionNLL("gaussian", observation_std=0.5),
    )


# --------------------------------------------------------------------------- VAE specifics
def test_loss_is_the_negative_elbo_with_the_reparameterised_sample():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, beta=2.5)
    images = tf.constant(make_data(steps=1)["views"][0])
    terms, features = model.compute_ssl_loss((images,), training=False)
    # By hand: the same heads, eps from the step seed (no optimizer: step 0), one decoder pass.
    feats = model.encoder(images, training=False)
    mean = model.mean_head(feats).numpy()
    log_variance = model.log_variance_head(feats).numpy()
    eps = draw_noise(GLOBAL_BATCH, 4, model_seed(model)).numpy()
    logits = model.decoder(mean + np.exp(0.5 * log_variance) * eps, training=False).numpy()
    x = images.numpy()
    reconstruction = _bernoulli_reference(x, logits, "bernoulli", 1.0).mean()
    kl = (0.5 * np.sum(np.exp(log_variance) + mean**2 - 1 - log_variance, axis=1)).mean()
    np.testing.assert_allclose(float(terms["reconstruction"]), reconstruction, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(terms["kl"]), kl, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        float(terms["loss"]), reconstruction + 2.5 * kl, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(features.numpy(), mean, rtol=1e-5, atol=1e-6)
    # The representation is mu: model(images) and the export encoder return it.
    np.testing.assert_allclose(model(images).numpy(), mean, rtol=1e-5, atol=1e-6)
    assert model.export_encoder.output_shape == (None, 4)


def model_seed(model):
    from keras_ssl.augment.seeds import fold_in

    return fold_in(model.noise_seed, 0)


def test_reparameterisation_gradient_flows_through_mu_and_log_variance():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    images = tf.constant(make_data(steps=1)["views"][0])
    with tf.GradientTape() as tape:
        terms, _ = model.compute_ssl_loss((images,), training=True)
    heads = model.mean_head.trainable_variables + model.log_variance_head.trainable_variables
    gradients = tape.gradient(terms["reconstruction"], heads)
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in gradients)


def test_noise_is_standard_normal_and_split_invariant():
    seed = tf.constant([5, 7])
    noise = draw_noise(20000, 2, seed).numpy()
    assert abs(noise.mean()) < 0.02 and abs(noise.std() - 1) < 0.02
    assert abs(np.corrcoef(noise[:, 0], noise[:, 1])[0, 1]) < 0.03
    uniform = draw_noise(20000, 1, seed, "uniform").numpy()
    assert uniform.min() >= -1 and uniform.max() < 1 and abs(uniform.mean()) < 0.02
    # One replica: the global draw itself; a fresh seed gives other numbers.
    np.testing.assert_array_equal(global_batch_noise(6, 2, seed), draw_noise(6, 2, seed))
    assert not np.allclose(draw_noise(6, 2, tf.constant([5, 8])).numpy(), draw_noise(6, 2, seed))
    # XLA draws the same numbers as the plain kernels.
    compiled = tf.function(lambda s: draw_noise(6, 2, s), jit_compile=True)
    np.testing.assert_allclose(compiled(seed).numpy(), draw_noise(6, 2, seed).numpy(), atol=1e-6)


def test_noise_of_two_replicas_is_the_rows_of_the_global_draw():
    strategy = testing.two_replica_strategy()
    seed = tf.constant([1, 2])
    per_replica = strategy.run(lambda: global_batch_noise(3, 2, seed))
    rows = np.concatenate([v.numpy() for v in strategy.experimental_local_results(per_replica)])
    np.testing.assert_array_equal(rows, draw_noise(6, 2, seed).numpy())


def test_noise_changes_every_step_and_is_fixed_in_inference():
    model = make_model(probe_classes=None)
    model.compile(optimizer="sgd")
    images = tf.constant(make_data(steps=1)["views"][0])
    first = model.compute_ssl_loss((images,), training=True)[0]["loss"]
    again = model.compute_ssl_loss((images,), training=True)[0]["loss"]
    np.testing.assert_array_equal(first, again)  # same step: same eps
    model.optimizer.iterations.assign(1)
    later = model.compute_ssl_loss((images,), training=True)[0]["loss"]
    assert float(later) != float(first)


def test_reconstruct_and_sample_give_images_in_unit_range():
    model = make_model(probe_classes=None)
    images = (make_data(steps=1)["views"][0] * 255).astype(np.uint8)
    reconstructions = model.reconstruct(images)
    samples = model.sample(5, seed=1)
    assert reconstructions.shape == (GLOBAL_BATCH, 8, 8, 1) and samples.shape == (5, 8, 8, 1)
    for array in (reconstructions, samples):
        assert array.min() >= 0 and array.max() <= 1
    np.testing.assert_array_equal(samples, model.sample(5, seed=1))
    gaussian = make_model(probe_classes=None, likelihood="gaussian", observation_std=0.1)
    assert gaussian.decoder.layers[-1].activation.__name__ == "sigmoid"
    assert 0 <= gaussian.sample(2).min() and gaussian.sample(2).max() <= 1


def test_trains_and_the_elbo_improves():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    grids = np.random.default_rng(0).random((64, 2, 2, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    history = model.fit(images, batch_size=16, epochs=8, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    assert history[-1] < history[0] - 2.0  # nats per 64-pixel image


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "vae" and config.augment.preset == "identity"
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, VAE) and model.latent_dim == config.method_kwargs.latent_dim


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"latent_dim": 2.0}, "latent_dim"),
        ({"beta": -1.0}, "beta"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"observation_std": 0.0}, "observation_std"),
        ({"seed": "one"}, "seed"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_bad_inputs_raise():
    model = make_model()
    with pytest.raises(ValueError, match="exactly 1 view"):
        model.compute_ssl_loss((tf.zeros((2, 8, 8, 1)),) * 2, training=False)
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(0)
    with pytest.raises(ValueError, match="distribution"):
        draw_noise(2, 2, tf.constant([0, 0]), "cauchy")
    with pytest.raises(ValueError, match="rank 4|shape"):
        model.reconstruct(np.zeros((8, 8), np.uint8))
