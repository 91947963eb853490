import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment.seeds import fold_in
from keras_ssl.methods.bigan import BiGAN
from keras_ssl.methods.step_random import draw_noise
from keras_ssl.optimizers import build_optimizer

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "bigan_fashion_mnist.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {
        "latent_dim": 4,
        "generator_widths": (8, 4),
        "discriminator_widths": (4, 8),
        "discriminator_hidden_dim": 8,
        "synchronized_bn": True,
        "seed": 3,
        "probe_classes": 3,
    }
    return BiGAN(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {
        "views": (rng.random((n, 8, 8, 1), dtype=np.float32),),
        "labels": rng.integers(0, 3, n),
    }


def bigan_state(model):
    return {
        "noise_seed": keras.ops.convert_to_numpy(model.noise_seed),
        "discriminator_steps": keras.ops.convert_to_numpy(model.discriminator_optimizer.iterations),
        "steps": keras.ops.convert_to_numpy(model.optimizer.iterations),
    }


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    # Replicas: both losses are per-example means scaled by 1/replicas; synchronized BN in the
    # backbone and generator, none in D; z drawn for the global batch and sliced per replica.
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(bigan_state)

    def check_history(self, history):
        assert set(history) == {
            "loss",
            "discriminator_loss",
            "generator_loss",
            "probe_loss",
            "probe_accuracy",
        }

    def check_restored(self, restored):
        # The round trip compiles with SGD(momentum=0.9) only: D gets a copy of it, whose
        # momentum slots must come back for "one more step gives identical weights" to hold.
        assert isinstance(restored, BiGAN) and restored.latent_dim == 4
        copy = restored.discriminator_optimizer
        assert copy is not restored.optimizer and isinstance(copy, keras.optimizers.SGD)
        assert copy.momentum == 0.9 and int(copy.iterations) == 2


def test_explicit_discriminator_optimizer_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        discriminator_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
    )
    data = make_data()
    model.fit(testing.make_dataset(data, GLOBAL_BATCH), epochs=1, verbose=0)
    path = str(tmp_path / "bigan.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.discriminator_optimizer, keras.optimizers.Adam)
    assert restored.discriminator_optimizer.beta_1 == 0.5
    for got, want in zip(
        restored.discriminator_optimizer.variables, model.discriminator_optimizer.variables
    ):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=want.path)
    assert int(restored.discriminator_optimizer.iterations) == 2
    one = testing.make_dataset({"views": (data["views"][0][:8],), "labels": data["labels"][:8]}, 8)
    model.fit(one, verbose=0)
    restored.fit(one, verbose=0)
    for got, want in zip(restored.weights, model.weights):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6, err_msg=want.path)


def _softplus(x):
    return np.log1p(np.exp(x))


# ------------------------------------------------------------------------ BiGAN specifics
def test_losses_are_computed_on_encoder_and_generator_pairs():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    images = tf.constant(make_data(steps=1)["views"][0])
    terms, features = model.compute_ssl_loss((images,), training=False)
    codes = model.latent_head(model.encoder(images, training=False)).numpy()
    z = draw_noise(GLOBAL_BATCH, 4, fold_in(model.noise_seed, 0), "uniform").numpy()
    assert z.min() >= -1 and z.max() < 1
    fakes = model.generator(z, training=False)
    real = model.discriminator([images, tf.constant(codes)], training=False).numpy()[:, 0]
    fake = model.discriminator([fakes, tf.constant(z)], training=False).numpy()[:, 0]
    d_loss = np.mean(_softplus(-real) + _softplus(fake))
    g_loss = np.mean(_softplus(real) + _softplus(-fake))
    np.testing.assert_allclose(float(terms["discriminator_loss"]), d_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(terms["generator_loss"]), g_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(terms["loss"]), d_loss + g_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(features.numpy(), codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(images).numpy(), codes, rtol=1e-5, atol=1e-6)
    assert model.export_encoder.output_shape == (None, 4)


def test_simultaneous_update_takes_both_gradients_at_the_forward_weights():
    # AdversarialMethod's default step: D's step on the discriminator loss and the players'
    # step on the generator loss, both gradients of the same forward pass (D not yet updated).
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1), discriminator_optimizer="sgd")
    images = tf.constant(make_data(steps=1)["views"][0])
    players, discriminator = model.player_variables()
    with tf.GradientTape(persistent=True) as tape:
        terms, _ = model.compute_ssl_loss((images,), training=True)
    expected = [
        v.numpy() - rate * g.numpy()
        for variables, loss, rate in (
            (players, terms["generator_loss"], 0.1),
            (discriminator, terms["discriminator_loss"], 0.01),
        )
        for v, g in zip(variables, tape.gradient(loss, variables))
    ]
    model.train_step({"views": (images,)})
    for variable, want in zip(players + discriminator, expected):
        np.testing.assert_allclose(variable.numpy(), want, rtol=1e-4, atol=1e-6)
    assert int(model.optimizer.iterations) == int(model.discriminator_optimizer.iterations) == 1


def _train(model, steps, learning_rates):
    generator_lr, discriminator_lr = learning_rates
    model.compile(
        optimizer=keras.optimizers.Adam(generator_lr, beta_1=0.5),
        discriminator_optimizer=keras.optimizers.Adam(discriminator_lr, beta_1=0.5),
    )
    grids = np.random.default_rng(0).random((64, 2, 2, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    return model.fit(images, batch_size=16, epochs=steps // 4, verbose=0).history


def _snapshot(network):
    return [w.numpy().copy() for w in network.trainable_weights]


@pytest.mark.parametrize("player", ["discriminator", "generator"])
def test_each_optimizer_moves_only_its_player_and_lowers_its_loss(player):
    # Freeze one side (learning rate 0): the other side's loss must fall and the frozen
    # side's weights must stay exactly where they were.
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    discriminator = _snapshot(model.discriminator)
    generator = _snapshot(model.generator) + _snapshot(model.latent_encoder)
    if player == "discriminator":
        history = _train(model, 24, (0.0, 3e-3))["discriminator_loss"]
        frozen, moved = generator, _snapshot(model.discriminator)
        after_frozen = _snapshot(model.generator) + _snapshot(model.latent_encoder)
        before_moved = discriminator
    else:
        history = _train(model, 24, (3e-3, 0.0))["generator_loss"]
        frozen, moved = discriminator, _snapshot(model.generator)
        after_frozen = _snapshot(model.discriminator)
        before_moved = generator[: len(moved)]
    assert np.isfinite(history).all()
    assert history[-1] < history[0] - 0.2, history
    for before, after in zip(frozen, after_frozen):
        np.testing.assert_array_equal(before, after)
    assert all(not np.array_equal(a, b) for a, b in zip(before_moved, moved))


def test_prior_samples_change_every_step():
    model = make_model(probe_classes=None)
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.Adam) and model.optimizer.beta_1 == 0.5
    images = tf.constant(make_data(steps=1)["views"][0])
    first = model.compute_ssl_loss((images,), training=True)[0]["generator_loss"]
    np.testing.assert_array_equal(
        model.compute_ssl_loss((images,), training=True)[0]["generator_loss"], first
    )
    model.optimizer.iterations.assign(1)
    assert float(model.compute_ssl_loss((images,), training=True)[0]["generator_loss"]) != float(
        first
    )


def test_reconstruct_and_sample():
    model = make_model(probe_classes=None, prior="normal")
    images = (make_data(steps=1)["views"][0] * 255).astype(np.uint8)
    reconstructions = model.reconstruct(images)
    samples = model.sample(5, seed=2)
    assert reconstructions.shape == (GLOBAL_BATCH, 8, 8, 1) and samples.shape == (5, 8, 8, 1)
    for array in (reconstructions, samples):
        assert array.min() >= 0 and array.max() <= 1
    np.testing.assert_array_equal(samples, model.sample(5, seed=2))
    codes = model.encode(tf.constant(images / 255, tf.float32))
    np.testing.assert_allclose(reconstructions, model.generate(codes), atol=1e-6)


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it, and that the discriminator steps
    # with its own copy of the configured optimizer.
    config = testing.load_config(CONFIG)
    assert config.method == "bigan" and config.augment.preset == "identity"
    testing.shrink_config(config)
    model = experiment.build_model(config, (28, 28, 1))
    assert isinstance(model, BiGAN) and model.latent_dim == 8
    model.compile(optimizer=build_optimizer(config.optimizer, steps_per_epoch=4, epochs=1))
    copy = model.discriminator_optimizer
    assert copy is not model.optimizer and isinstance(copy, keras.optimizers.Adam)
    assert float(copy.learning_rate) == float(model.optimizer.learning_rate)
    assert float(copy.learning_rate) == pytest.approx(2e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"prior": "cauchy"}, "prior"),
        ({"discriminator_widths": ()}, "discriminator_widths"),
        ({"discriminator_hidden_dim": -1}, "discriminator_hidden_dim"),
        ({"seed": 1.5}, "seed"),
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
        model.sample(-1)
    with pytest.raises(ValueError, match="shape"):
        model.reconstruct(np.zeros((2, 9, 9, 1), np.uint8))
