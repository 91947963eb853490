import importlib.util
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, methods, testing
from keras_ssl.datasets import fashion_mnist
from keras_ssl.methods.context_encoder import (
    ContextEncoder,
    discriminator_loss,
    generator_adversarial_loss,
    masked_reconstruction_loss,
)
from keras_ssl.methods.step_random import step_seed
from keras_ssl.pretext import masks as masks_lib

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "context_encoder_fashion_mnist.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {
        "mask": "random_blocks",
        "decoder_widths": (8, 4),
        "discriminator_widths": (4, 8),
        "synchronized_bn": True,
        "probe_classes": 3,
    }
    return ContextEncoder(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {"views": (rng.random((n, 8, 8, 1), dtype=np.float32),), "labels": rng.integers(0, 3, n)}


def state(model):
    # The discriminator's weights are in model.weights (compared by every check); the mask seed
    # and the discriminator optimizer's slots are the rest of the state.
    values = {"mask_seed": keras.ops.convert_to_numpy(model.mask_seed)}
    for index, variable in enumerate(model.discriminator_optimizer.variables):
        values[f"discriminator_optimizer_{index}"] = keras.ops.convert_to_numpy(variable)
    return values


# ------------------------------------------------------------------------------ battery
def test_fit_updates_weights():
    # Every trainable weight moves, the discriminator's included.
    history = testing.check_fit_updates(make_model, make_data(), GLOBAL_BATCH)
    assert set(history) == {
        "loss",
        "reconstruction_loss",
        "adversarial_loss",
        "discriminator_loss",
        "probe_loss",
        "probe_accuracy",
    }


def test_two_replicas_equal_one():
    # Masks are drawn for the global batch and sliced per replica; every term (reconstruction,
    # adversarial, discriminator) is a per-example mean; both optimizers scale by 1/replicas.
    # Compared: every weight of encoder, decoder and discriminator, and both optimizers' state.
    testing.check_replica_equivalence(make_model, make_data(), GLOBAL_BATCH, state_fn=state)


def test_xla_step_matches_plain_step():
    testing.check_xla_step(make_model, make_data(), GLOBAL_BATCH)


def test_keras_round_trip_restores_both_optimizers(tmp_path):
    # check_save_load: one more step after reloading gives the same weights, which needs the
    # discriminator optimizer's momentum slots restored (state_fn compares them directly).
    restored = testing.check_save_load(
        make_model, make_data(), GLOBAL_BATCH, tmp_path, state_fn=state
    )
    assert isinstance(restored, ContextEncoder) and restored.mask == "random_blocks"
    assert isinstance(restored.discriminator_optimizer, keras.optimizers.SGD)
    assert restored.discriminator_optimizer is not restored.optimizer


def test_export_serves_in_fresh_process(tmp_path):
    testing.check_export(make_model, make_data(steps=1), GLOBAL_BATCH, tmp_path)


# -------------------------------------------------------------------------------- losses
def test_masked_reconstruction_loss():
    images = np.zeros((1, 2, 2, 1), np.float32)
    predictions = np.array([[[[1.0], [2.0]], [[3.0], [4.0]]]], np.float32)
    masks = np.array([[[[1.0], [0.0]], [[1.0], [0.0]]]], np.float32)
    # Dropped pixels: errors 2 and 4 -> (4 + 16) / 2; kept pixels do not count.
    testing.run_loss_test(
        masked_reconstruction_loss,
        {"images": images, "predictions": predictions, "masks": masks},
        expected=10.0,
    )
    rng = np.random.default_rng(0)
    inputs = {
        "images": rng.random((4, 5, 5, 3)),
        "predictions": rng.random((4, 5, 5, 3)),
        "masks": (rng.random((4, 5, 5, 1)) > 0.4).astype(np.float32),
    }

    def reference(images, predictions, masks):
        holes = 1 - masks
        return np.sum(holes * (images - predictions) ** 2, axis=(1, 2, 3)) / (
            3 * holes.sum(axis=(1, 2, 3))
        )

    testing.run_loss_test(masked_reconstruction_loss, inputs, reference_fn=reference)
    assert float(masked_reconstruction_loss(images, predictions, np.ones_like(masks))[0]) == 0


def test_adversarial_losses():
    logits = np.array([[0.0], [2.0]], np.float32)
    # -log sigmoid(0) = log 2; -log(1 - sigmoid(0)) = log 2.
    testing.run_loss_test(
        discriminator_loss,
        {"real_logits": logits[:1], "fake_logits": logits[:1]},
        expected=2 * np.log(2.0),
    )
    sigmoid = 1 / (1 + np.exp(-logits))
    testing.run_loss_test(
        generator_adversarial_loss,
        {"fake_logits": logits},
        reference_fn=lambda fake_logits: -np.log(1 / (1 + np.exp(-fake_logits)))[:, 0],
        expected=np.mean(-np.log(sigmoid)),
    )
    testing.run_loss_test(
        discriminator_loss,
        {"real_logits": logits, "fake_logits": -logits},
        reference_fn=lambda real_logits, fake_logits: (
            -(np.log(1 / (1 + np.exp(-real_logits))) + np.log(1 - 1 / (1 + np.exp(-fake_logits))))[
                :, 0
            ]
        ),
    )


# ---------------------------------------------------------------- context encoder specifics
def test_loss_is_the_weighted_sum_of_eq_1_and_the_adversarial_term():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, mask="central")
    images = tf.constant(make_data(steps=1)["views"][0])
    terms, codes = model.compute_ssl_loss((images,), training=False)
    b = masks_lib.central_square(GLOBAL_BATCH, (8, 8)).numpy()
    x = images.numpy()
    context = x * b
    assert np.all(context[:, 2:6, 2:6] == 0)  # the encoder never sees the hole
    predictions = model.decoder(model.encoder(context)).numpy()
    reconstruction = np.mean(np.sum((1 - b) * (x - predictions) ** 2, (1, 2, 3)) / 16)
    inpainted = b * x + (1 - b) * predictions
    fake = model.discriminator(inpainted).numpy()[:, 0]
    real = model.discriminator(x).numpy()[:, 0]
    adversarial = np.mean(np.log1p(np.exp(-fake)))
    critic = np.mean(np.log1p(np.exp(-real)) + np.log1p(np.exp(fake)))
    np.testing.assert_allclose(float(terms["reconstruction_loss"]), reconstruction, rtol=1e-5)
    np.testing.assert_allclose(float(terms["adversarial_loss"]), adversarial, rtol=1e-5)
    np.testing.assert_allclose(float(terms["discriminator_loss"]), critic, rtol=1e-5)
    np.testing.assert_allclose(
        float(terms["loss"]), 0.999 * reconstruction + 0.001 * adversarial, rtol=1e-5
    )
    np.testing.assert_allclose(codes.numpy(), model.encoder(context).numpy(), rtol=1e-5)


def _step(model, images):
    model.train_step({"views": (tf.constant(images),)})
    return [w.numpy() for w in model.discriminator.weights]


def test_discriminator_steps_first_and_generator_uses_the_updated_discriminator():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1), discriminator_optimizer="sgd")
    images = make_data(steps=1)["views"][0]
    masks = model.make_masks(GLOBAL_BATCH, step_seed(model, model.mask_seed, True))
    x = tf.constant(images)
    _, inpainted, _ = model._generator_terms(x, masks, True)
    variables = model.discriminator.trainable_variables
    with tf.GradientTape() as tape:
        critic = model._discriminator_loss(x, inpainted, True)
    expected = [
        v.numpy() - 0.01 * g.numpy() for v, g in zip(variables, tape.gradient(critic, variables))
    ]
    generator_before = [v.numpy() for v in model.decoder.trainable_variables]
    after = _step(model, images)
    for got, want in zip(after, expected):  # SGD(0.01) on the discriminator loss
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    moved = [
        not np.allclose(a, b) for a, b in zip(generator_before, model.decoder.trainable_variables)
    ]
    assert all(moved)
    assert model.optimizer.iterations.numpy() == 1
    assert model.discriminator_optimizer.iterations.numpy() == 1


def test_adversarial_weight_zero_skips_the_discriminator():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, adversarial_weight=0.0, reconstruction_weight=1.0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    images = make_data(steps=1)["views"][0]
    before = [w.numpy() for w in model.discriminator.weights]
    after = _step(model, images)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert model.discriminator_optimizer.iterations.numpy() == 0
    logs = {m.name: float(m.result()) for m in model.metrics}
    assert logs["adversarial_loss"] == 0 and logs["discriminator_loss"] == 0
    assert logs["loss"] == logs["reconstruction_loss"] > 0


def test_reconstruction_error_is_measured_inside_the_hole():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, mask="central")
    images = make_data(steps=1)["views"][0]
    masks, predictions, inpainted = model.reconstruct(images)
    np.testing.assert_array_equal(inpainted[:, :2], images[:, :2])  # context kept
    np.testing.assert_array_equal(inpainted[:, 2:6, 2:6], predictions[:, 2:6, 2:6])
    expected = np.mean((images[:, 2:6, 2:6] - predictions[:, 2:6, 2:6]) ** 2)
    np.testing.assert_allclose(
        model.reconstruction_error(images, batch_size=3), expected, rtol=1e-5
    )


def test_region_masks_from_a_source_and_their_config():
    keras.utils.set_random_seed(0)
    source = np.zeros((2, 8, 8), np.uint8)
    source[0, 1:3, 1:5] = 1
    source[1, 4:8, 4:6] = 1
    model = make_model(mask="random_region", region_masks=source, probe_classes=None)
    masks, _, _ = model.reconstruct(make_data(steps=1)["views"][0])
    assert set((1 - masks).sum(axis=(1, 2, 3))) == {8.0}  # each source mask has 8 pixels
    rebuilt = ContextEncoder.from_config(model.get_config())
    np.testing.assert_array_equal(rebuilt.region_masks, source)


def test_trains_and_learns_on_smooth_images():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, mask="central", decoder_widths=(16, 8))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    grids = np.random.default_rng(0).random((64, 2, 2, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    history = model.fit(images, batch_size=16, epochs=12, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["reconstruction_loss"][-1] < 0.5 * history["reconstruction_loss"][0]


def test_trains_from_its_config(tmp_path, monkeypatch):
    monkeypatch.setitem(methods.REGISTRY, "context_encoder", ContextEncoder)
    spec = importlib.util.spec_from_file_location(CONFIG.stem, CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    assert config.method == "context_encoder"
    config.data.data_dir = str(fashion_mnist.EMBEDDED_DIR)
    config.data.train_examples = 256
    config.data.probe_train_examples = 200
    config.data.probe_test_examples = 50
    config.backbone_kwargs = {"widths": (4, 8)}
    config.method_kwargs.decoder_widths = (8, 4)
    config.method_kwargs.discriminator_widths = (4, 8)
    config.batch_size = 64
    config.epochs = 1
    config.precision = "float32"
    config.probes.linear_epochs = 1
    config.probes.collapse_every_epochs = 0
    config.export = False
    model, history = experiment.train(config, str(tmp_path), verbose=0)
    assert isinstance(model, ContextEncoder) and model.discriminator_optimizer.iterations == 4
    assert np.isfinite(history["discriminator_loss"][0])
    assert 0 <= history["knn_accuracy"][0] <= 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mask": "square"}, "`mask` must be one of"),
        ({"adversarial_weight": -1}, "`adversarial_weight` must be a number >= 0; received -1"),
        ({"reconstruction_weight": "1"}, "`reconstruction_weight` must be a number >= 0"),
        ({"mask": "random_region", "region_masks": np.ones((2, 4, 4))}, "received shape"),
        ({"seed": 1.5}, "`seed` must be an int or None"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_bad_evaluation_input_raises():
    model = make_model()
    with pytest.raises(ValueError, match="rank 4"):
        model.reconstruction_error(np.zeros((4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="`batch_size` must be a positive int"):
        model.reconstruction_error(np.zeros((4, 8, 8, 1), np.float32), batch_size=-1)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_step_is_close_to_float32(policy):
    testing.check_mixed_precision(make_model, make_data(steps=1), GLOBAL_BATCH, policy)
