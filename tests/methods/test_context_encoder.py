import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.losses import discriminator_loss
from keras_ssl.methods.context_encoder import ContextEncoder
from keras_ssl.methods.inpainting import IMAGENET_MEAN, IMAGENET_MEAN_GREY
from keras_ssl.methods.step_random import step_seed
from keras_ssl.optimizers import build_optimizer
from keras_ssl.pretext import masks as masks_lib

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "context_encoder_fashion_mnist.py"


def make_model(image_shape=(8, 8, 1), **kwargs):
    encoder = backbones.SmallResNet(image_shape, widths=(4, 8), synchronized_bn=True)
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
    values = {
        "mask_seed": keras.ops.convert_to_numpy(model.mask_seed),
        "fill": keras.ops.convert_to_numpy(model.fill),
    }
    for index, variable in enumerate(model.discriminator_optimizer.variables):
        values[f"discriminator_optimizer_{index}"] = keras.ops.convert_to_numpy(variable)
    return values


# ------------------------------------------------------------------------------ battery
def _adapted_model():
    model = make_model()
    model.adapt(np.full((4, 8, 8, 1), 0.3, np.float32))  # fill 0.3, not the default 0.43
    return model


class TestBattery(testing.MethodBattery):
    # Fit: every trainable weight moves, the discriminator's included.
    # Replicas: masks are drawn for the global batch and sliced per replica; every term
    # (reconstruction, adversarial, discriminator) is a per-example mean; both optimizers scale
    # by 1/replicas. Compared: every weight of encoder, decoder and discriminator, and both
    # optimizers' state.
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(state)
    # The round trip: one more step after reloading gives the same weights, which needs the
    # discriminator optimizer's momentum slots restored (state_fn compares them directly) and
    # the adapted fill value (a variable: the config still says fill_value=None).
    save_load_model = staticmethod(_adapted_model)

    def check_history(self, history):
        assert set(history) == {
            "loss",
            "reconstruction_loss",
            "adversarial_loss",
            "discriminator_loss",
            "probe_loss",
            "probe_accuracy",
        }

    def check_restored(self, restored):
        np.testing.assert_allclose(restored.fill.numpy(), [0.3], rtol=1e-6, atol=1e-7)
        assert isinstance(restored, ContextEncoder) and restored.mask == "random_blocks"
        assert isinstance(restored.discriminator_optimizer, keras.optimizers.SGD)
        assert restored.discriminator_optimizer is not restored.optimizer


# ---------------------------------------------------------------- context encoder specifics
def _softplus(x):
    return np.log1p(np.exp(x))


def _border(masks, width):
    # pretext.masks.overlap_border is checked against a brute-force border in its own tests.
    return masks_lib.overlap_border(masks, width).numpy()


def test_loss_is_the_weighted_sum_with_the_mean_fill_and_the_central_region_judged():
    # 16x16 images, central hole [4:12], overlap 2: predicted region and D's input [2:14].
    keras.utils.set_random_seed(0)
    model = make_model((16, 16, 1), probe_classes=None, mask="central", overlap=2)
    assert model.discriminator.input_shape == (None, 12, 12, 1)
    images = tf.constant(np.random.default_rng(0).random((GLOBAL_BATCH, 16, 16, 1), np.float32))
    terms, codes = model.compute_ssl_loss((images,), training=False)
    b = masks_lib.central_square(GLOBAL_BATCH, (16, 16)).numpy()
    x = images.numpy()
    context = x * b + (1 - b) * IMAGENET_MEAN_GREY
    np.testing.assert_allclose(context[:, 4:12, 4:12], IMAGENET_MEAN_GREY, rtol=1e-6, atol=0)
    predictions = model.decoder(model.encoder(context)).numpy()
    weights = (1 - b) + 10 * _border(b, 2)
    reconstruction = np.mean(np.sum(weights * (x - predictions) ** 2, (1, 2, 3)) / 144)
    fake = model.discriminator(predictions[:, 2:14, 2:14]).numpy()[:, 0]
    real = model.discriminator(x[:, 2:14, 2:14]).numpy()[:, 0]
    adversarial = np.mean(_softplus(-fake))
    critic = np.mean(_softplus(-real) + _softplus(fake))
    np.testing.assert_allclose(
        float(terms["reconstruction_loss"]), reconstruction, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(float(terms["adversarial_loss"]), adversarial, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(terms["discriminator_loss"]), critic, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        float(terms["loss"]), 0.999 * reconstruction + 0.001 * adversarial, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(codes.numpy(), model.encoder(context).numpy(), rtol=1e-5, atol=1e-6)


def test_random_masks_discriminator_judges_the_predicted_region_only():
    # D sees R * image (R = hole + 1-pixel border), real and predicted: the context outside R
    # is 0 in both, and the composite image is never judged.
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, overlap=1)
    x = make_data(steps=1)["views"][0]
    b = model.make_masks(GLOBAL_BATCH, step_seed(model, model.mask_seed, False)).numpy()
    seen = []
    call = model.discriminator.call
    model.discriminator.call = lambda inputs, *a, **k: seen.append(inputs) or call(inputs, *a, **k)
    terms, _ = model.compute_ssl_loss((tf.constant(x),), training=False)
    del model.discriminator.call
    region = (1 - b) + _border(b, 1)
    assert 0 < region.mean() < 1
    predictions = model.decoder(model.encoder(model.make_context(x, b))).numpy()
    fake, real = region * predictions, region * x
    np.testing.assert_allclose(seen[0].numpy(), real, rtol=1e-5, atol=1e-6)  # critic: real
    np.testing.assert_allclose(seen[1].numpy(), fake, rtol=1e-5, atol=1e-6)  # critic: fake
    np.testing.assert_allclose(seen[2].numpy(), fake, rtol=1e-5, atol=1e-6)  # generator term
    assert len(seen) == 3
    fake_logits = model.discriminator(fake).numpy()[:, 0]
    real_logits = model.discriminator(real).numpy()[:, 0]
    critic = np.mean(_softplus(-real_logits) + _softplus(fake_logits))
    np.testing.assert_allclose(float(terms["discriminator_loss"]), critic, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        float(terms["adversarial_loss"]), np.mean(_softplus(-fake_logits)), rtol=1e-5, atol=1e-5
    )


def test_hole_is_filled_with_the_configured_mean():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, mask="central", fill_value=0.25)
    x = make_data(steps=1)["views"][0]
    b = masks_lib.central_square(GLOBAL_BATCH, (8, 8)).numpy()
    context = model.make_context(tf.constant(x), tf.constant(b)).numpy()
    np.testing.assert_array_equal(context[:, 2:6, 2:6], np.full((8, 4, 4, 1), 0.25, np.float32))
    np.testing.assert_array_equal(context * b, x * b)  # the context is untouched
    _, codes = model.compute_ssl_loss((tf.constant(x),), training=False)
    expected = model.encoder(x * b + (1 - b) * 0.25).numpy()
    np.testing.assert_allclose(codes.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(codes.numpy(), model.encoder(x * b).numpy(), atol=1e-4)
    rgb = make_model((8, 8, 3), fill_value=(0.1, 0.2, 0.3))
    np.testing.assert_allclose(rgb.fill.numpy(), [0.1, 0.2, 0.3], rtol=1e-6, atol=0)


def test_default_fill_is_the_papers_imagenet_mean_and_adapt_takes_the_data_mean():
    np.testing.assert_allclose(
        make_model().fill.numpy(),
        [(0.299 * 117 + 0.587 * 104 + 0.114 * 123) / 255],
        rtol=1e-6,
        atol=1e-7,
    )
    rgb = make_model((8, 8, 3))
    np.testing.assert_allclose(rgb.fill.numpy(), np.array([117, 104, 123]) / 255, rtol=1e-6, atol=0)
    assert rgb.get_config()["fill_value"] is None and IMAGENET_MEAN[0] == 117 / 255
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    mean = rgb.adapt(images, batch_size=3)
    np.testing.assert_allclose(mean, images.mean(axis=(0, 1, 2)) / 255, rtol=1e-6, atol=0)
    np.testing.assert_allclose(rgb.fill.numpy(), mean, rtol=0, atol=0)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4)
    np.testing.assert_allclose(rgb.adapt(dataset), mean, rtol=1e-6, atol=0)


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
    predictions, _ = model.inpaint(x, masks, True)
    real = masks_lib.predicted_region(x, masks, model.mask, model.overlap)
    fake = masks_lib.predicted_region(predictions, masks, model.mask, model.overlap)
    variables = model.discriminator.trainable_variables
    with tf.GradientTape() as tape:
        logits = [model.discriminator(r, training=True) for r in (real, fake)]
        critic = tf.reduce_mean(discriminator_loss(*logits))
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
        model.reconstruction_error(images, batch_size=3), expected, rtol=1e-5, atol=1e-5
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


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it, and that the discriminator steps
    # with its own copy of the configured optimizer.
    config = testing.load_config(CONFIG)
    assert config.method == "context_encoder"
    testing.shrink_config(config)
    model = experiment.build_model(config, (28, 28, 1))
    assert isinstance(model, ContextEncoder) and model.mask == "random_blocks"
    assert (model.reconstruction_weight, model.adversarial_weight) == (0.999, 0.001)
    model.compile(optimizer=build_optimizer(config.optimizer, steps_per_epoch=4, epochs=1))
    copy = model.discriminator_optimizer
    assert copy is not model.optimizer and type(copy) is type(model.optimizer)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mask": "square"}, "`mask` must be one of"),
        ({"adversarial_weight": -1}, "`adversarial_weight` must be a number >= 0; received -1"),
        ({"reconstruction_weight": "1"}, "`reconstruction_weight` must be a number >= 0"),
        ({"mask": "random_region", "region_masks": np.ones((2, 4, 4))}, "received shape"),
        ({"seed": 1.5}, "`seed` must be an int or None"),
        ({"overlap": -1}, "`overlap` must be an integer >= 0; received -1.*pixels"),
        ({"overlap": 2.5}, "`overlap` must be an integer >= 0; received 2.5"),
        ({"overlap_weight": -10}, "`overlap_weight` must be a number >= 0; received -10"),
        ({"fill_value": 1.5}, "`fill_value` must be a float in \\[0, 1\\] or 1 of them"),
        ({"fill_value": (0.1, 0.2)}, "received \\(0.1, 0.2\\)"),
        ({"fill_value": "mean"}, "received 'mean'"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_bad_evaluation_input_raises():
    model = make_model()
    with pytest.raises(ValueError, match="rank 4"):
        model.reconstruction_error(np.zeros((4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        model.reconstruction_error(np.zeros((4, 8, 8, 1), np.float32), batch_size=-1)
