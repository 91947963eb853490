import math
import pathlib
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment import (
    ColorJitter,
    MultiViewAugmenter,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomSolarize,
    presets,
)
from keras_ssl.callbacks import CollapseMonitor, CollapseWarning
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.methods.byol import BYOL

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "byol_fashion_mnist.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,), synchronized_bn=True)
    options = {
        "projection_hidden_dim": 8,
        "projection_dim": 4,
        "prediction_hidden_dim": 8,
        "momentum": 0.9,
        "momentum_epochs": 4,  # the battery fits one step per epoch
        "synchronized_bn": True,
        "probe_classes": 3,
    }
    return BYOL(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    views = tuple(rng.random((n, 8, 8, 1), dtype=np.float32) for _ in range(2))
    return {"views": views, "labels": rng.integers(0, 3, n)}


def target_state(model):
    """Every weight of the target network (EMA'd weights and its own BatchNorm statistics)."""
    weights = model.target_encoder.weights + model.target_projector.weights
    return {f"target_{i}": keras.ops.convert_to_numpy(w) for i, w in enumerate(weights)}


def online_target_pairs(model):
    return list(zip(model.encoder.weights, model.target_encoder.weights)) + list(
        zip(model.projector.weights, model.target_projector.weights)
    )


def smooth_images(count=64, seed=0):
    """Random 2x2 grids upsampled to 8x8: images that stay recognisable under crops."""
    grids = np.random.default_rng(seed).random((count, 2, 2, 1))
    return tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    # The replica check and the round trip compare the target network too. The export check
    # compares with model.predict, i.e. model.encoder: the ONLINE encoder.
    state_fn = staticmethod(target_state)

    def check_restored(self, restored):
        assert isinstance(restored, BYOL) and restored.momentum == 0.9
        assert isinstance(restored.augmenter.pipelines[1][-1], RandomSolarize)


# --------------------------------------------------------------------- paper behaviour
def test_loss_is_the_symmetrised_normalised_mse_of_one_pass_per_network():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.plan_schedules(steps_per_epoch=1, epochs=4)  # train_on_batch: no fit to plan it
    # Move the target away from the online network so that the two differ.
    for weight in model.target_projector.weights:
        weight.assign(weight + 0.1)
    twin = BYOL.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    both = tf.concat(views, axis=0)
    q = twin.predictor(
        twin.projector(twin.encoder(both, training=True), training=True), training=True
    )
    z = twin.target_projector(twin.target_encoder(both, training=True), training=True)
    q, z = q.numpy(), z.numpy()

    def two_minus_two_cos(a, b):
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return 2 - 2 * np.sum(a * b, axis=1)

    n = GLOBAL_BATCH
    expected = np.mean(two_minus_two_cos(q[:n], z[n:]) + two_minus_two_cos(q[n:], z[:n]))
    logs = model.train_on_batch({"views": views}, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-5)
    assert 0 <= logs["loss"] <= 8


def test_target_follows_the_online_network_by_ema_with_the_cosine_tau():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, momentum=0.9, momentum_epochs=None)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.plan_schedules(steps_per_epoch=2, epochs=2)  # a run of 4 steps
    # Start the target away from the online network so that the EMA is visible.
    for weight in model.target_encoder.trainable_weights + model.target_projector.weights:
        weight.assign(weight + 1.0)
    assert not model.target_encoder.trainable_weights  # frozen: no gradients, no slots
    data = make_data(steps=3)
    # tau(k) = 1 - (1 - 0.9) (cos(pi k / 4) + 1) / 2, by hand: 0.9, 0.914645, 0.95.
    expected_taus = [0.9, 1 - 0.1 * (math.cos(math.pi / 4) + 1) / 2, 0.95]
    for step, expected_tau in enumerate(expected_taus):
        before = [t.numpy() for _, t in online_target_pairs(model)]
        batch = {
            "views": tuple(
                v[step * GLOBAL_BATCH : (step + 1) * GLOBAL_BATCH] for v in data["views"]
            )
        }
        model.train_on_batch(batch)
        assert int(model.optimizer.iterations) == step + 1
        tau = float(model.momentum_at(step))
        assert tau == pytest.approx(expected_tau, abs=1e-7)
        tau32 = np.float32(tau)
        for (online, target), old in zip(online_target_pairs(model), before):
            if online.trainable:
                ema = tau32 * old + (np.float32(1) - tau32) * online.numpy()
                np.testing.assert_allclose(target.numpy(), ema, rtol=1e-6, atol=1e-7)
            else:  # BatchNorm statistics: the target's own, from its own forward passes
                assert not np.allclose(target.numpy(), old)
    assert float(model.momentum_at(4)) == pytest.approx(1.0)
    assert float(model.momentum_at(100)) == pytest.approx(1.0)


class RecordTau(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.taus = []

    def on_train_batch_end(self, batch, logs=None):
        self.taus.append(float(self.model.momentum_at(self.model.optimizer.iterations - 1)))


@pytest.mark.parametrize("batches", [2, 3])
def test_default_tau_is_the_papers_cosine_from_0_996_to_1_over_the_run(batches):
    # BYOL Sec. 3.2: tau = 1 - (1 - 0.996) (cos(pi k / K) + 1) / 2, K the run's total steps.
    model = BYOL(
        backbones.SmallResNet((8, 8, 1), widths=(4,)),
        projection_hidden_dim=8,
        projection_dim=4,
        prediction_hidden_dim=8,
    )
    assert (model.momentum, model.final_momentum, model.momentum_epochs) == (0.996, 1.0, None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    record = RecordTau()
    dataset = testing.make_dataset(make_data(steps=batches), GLOBAL_BATCH)
    model.fit(dataset, epochs=2, callbacks=[record], verbose=0)
    total = 2 * batches
    expected = [1 - 0.004 * (math.cos(math.pi * k / total) + 1) / 2 for k in range(total)]
    np.testing.assert_allclose(record.taus, expected, rtol=0, atol=1e-7)
    assert float(model.momentum_at(total)) == pytest.approx(1.0, abs=1e-7)


def test_model_embeds_with_the_online_encoder_not_the_target():
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.fit(testing.make_dataset(make_data(steps=1), GLOBAL_BATCH), epochs=1, verbose=0)
    images = np.random.default_rng(1).random((5, 8, 8, 1), dtype=np.float32)
    online = model.encoder(images, training=False).numpy()
    target = model.target_encoder(images, training=False).numpy()
    np.testing.assert_allclose(model.predict(images, verbose=0), online, rtol=1e-5, atol=1e-6)
    assert not np.allclose(online, target, atol=1e-4)


def test_only_the_online_network_is_trainable():
    model = make_model(probe_classes=None)
    online = model.encoder.trainable_weights + model.projector.trainable_weights
    online += model.predictor.trainable_weights
    assert {id(w) for w in model.trainable_weights} == {id(w) for w in online}
    assert len(model.projector.hidden_dims) == len(model.predictor.hidden_dims) == 1
    assert model.predictor.output_dim == model.projector.output_dim == 4


def test_without_predictor_the_loss_compares_projections():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, use_predictor=False)
    assert model.predictor is None
    assert not any("predictor" in w.path for w in model.weights)
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    both = tf.concat(views, axis=0)
    z_online = model.projector(model.encoder(both, training=True), training=True).numpy()
    z_target = model.target_projector(
        model.target_encoder(both, training=True), training=True
    ).numpy()
    # The target starts as an exact copy, and the same batch gives the same BatchNorm statistics.
    np.testing.assert_allclose(z_online, z_target, rtol=1e-6, atol=1e-6)
    terms, _ = model.compute_ssl_loss(views, training=True)
    cos = np.sum(
        (z_online / np.linalg.norm(z_online, axis=1, keepdims=True))[:GLOBAL_BATCH]
        * (z_target / np.linalg.norm(z_target, axis=1, keepdims=True))[GLOBAL_BATCH:],
        axis=1,
    )
    cos_swapped = np.sum(
        (z_online / np.linalg.norm(z_online, axis=1, keepdims=True))[GLOBAL_BATCH:]
        * (z_target / np.linalg.norm(z_target, axis=1, keepdims=True))[:GLOBAL_BATCH],
        axis=1,
    )
    np.testing.assert_allclose(
        float(terms["loss"]), np.mean(4 - 2 * cos - 2 * cos_swapped), 1e-5, atol=1e-5
    )


class ProjectionCollapseMonitor(CollapseMonitor):
    """CollapseMonitor on the online projections ``z`` (the output SimSiam's Fig. 2 tracks).

    BYOL without a predictor collapses at the projector (its BatchNorm lets the projector map
    every input to one point while the encoder keeps its spread), so the monitor watches the
    projector's output: measured on this data, the encoder's own ``embedding_std`` stays about
    0.3-0.4 with or without the predictor, while the projections' falls to about 0.05 without it.
    """

    @property
    def encoder(self):
        model = self.model
        if not hasattr(self, "_projection"):
            self._projection = keras.Sequential(
                [keras.Input(model.image_shape), model.encoder, model.projector]
            )
        return self._projection


class FirstBatchLoss(keras.callbacks.Callback):
    """Records the loss of the first training step (computed before its update)."""

    def on_train_batch_end(self, batch, logs=None):
        if not hasattr(self, "value"):
            self.value = float(logs["loss"])


@pytest.fixture(scope="module")
def toy_runs():
    """BYOL with and without its predictor: 80 seeded steps each at a high learning rate."""
    runs = {}
    for use_predictor in (True, False):
        keras.utils.set_random_seed(0)
        model = BYOL(
            backbones.SmallResNet((8, 8, 1), widths=(4, 8)),
            augmenter=presets.byol((8, 8, 1), crop_scale=(0.5, 1.0)),
            projection_hidden_dim=16,
            projection_dim=8,
            prediction_hidden_dim=16,
            use_predictor=use_predictor,
            momentum=0.99,
            final_momentum=None,  # constant: a toy run this short needs a moving target
        )
        model.compile(optimizer=keras.optimizers.Adam(0.05))
        images = smooth_images()
        dataset = make_ssl_dataset(images, batch_size=16, augmenter=model.augmenter, seed=1)
        first = FirstBatchLoss()
        monitor = ProjectionCollapseMonitor(images, every_n_epochs=4, std_threshold=0.2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(dataset.repeat(5), epochs=4, callbacks=[first, monitor], verbose=0)
        runs[use_predictor] = {
            "initial_loss": first.value,
            "loss": history.history["loss"],
            "embedding_std": monitor.results[4]["embedding_std"],
            "warnings": [w for w in caught if issubclass(w.category, CollapseWarning)],
        }
    return runs


def test_collapse_monitor_warns_for_byol_without_predictor_and_not_for_byol(toy_runs):
    # Without the predictor the loss reaches its trivial minimum (0) and the projections
    # collapse to one point; BYOL proper keeps them spread. (Measured: 0.06 vs 0.66.)
    collapsed, proper = toy_runs[False], toy_runs[True]
    assert collapsed["loss"][-1] < 0.1
    assert collapsed["embedding_std"] < 0.1
    assert len(collapsed["warnings"]) == 1
    assert "embedding_std" in str(collapsed["warnings"][0].message)
    assert proper["embedding_std"] > 0.4
    assert not proper["warnings"]


def test_trains_from_the_input_pipeline_and_learns(toy_runs):
    run = toy_runs[True]
    # Random predictions are about orthogonal to the targets: 2 + 2 at the start.
    assert run["initial_loss"] == pytest.approx(4.0, abs=0.5)
    assert run["loss"][-1] < run["initial_loss"] - 1.5
    assert np.isfinite(run["loss"]).all()


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "byol" and config.augment.preset == "byol"
    assert config.method_kwargs.momentum == 0.99 and config.optimizer.name == "adamw"
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, BYOL) and model.momentum == 0.99
    assert isinstance(model.augmenter.pipelines[1][-1], RandomSolarize)


# --------------------------------------------------------------------------- presets
def _types(pipeline):
    return [type(layer) for layer in pipeline]


def test_byol_preset_has_two_different_pipelines_on_rgb_images():
    augmenter = presets.byol((32, 32, 3))
    assert isinstance(augmenter, MultiViewAugmenter) and augmenter.num_views == 2
    first, second = augmenter.pipelines
    common = [RandomResizedCrop, RandomHorizontalFlip, ColorJitter, RandomGrayscale]
    assert _types(first) == [*common, RandomGaussianBlur]
    assert _types(second) == [*common, RandomGaussianBlur, RandomSolarize]
    assert all(a is not b for a, b in zip(first, second))
    for pipeline in (first, second):
        crop, flip, jitter, gray = pipeline[:4]
        assert (crop.height, crop.width, crop.scale) == (32, 32, (0.08, 1.0))
        assert flip.probability == 0.5 and gray.probability == 0.2
        assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (
            0.4,
            0.4,
            0.2,
            0.1,
        )
        assert jitter.probability == 0.8 and jitter.random_order
    assert (first[4].probability, second[4].probability) == (1.0, 0.1)
    assert first[4].kernel_size == second[4].kernel_size == presets.blur_kernel_size(32) == 3
    assert first[4].sigma == (0.1, 2.0)
    assert (second[5].probability, second[5].threshold) == (0.2, 0.5)
    assert presets.byol((224, 224, 3)).pipelines[0][4].kernel_size == 23


def test_byol_preset_on_grayscale_and_without_blur():
    first, second = presets.byol((28, 28, 1)).pipelines
    assert _types(first) == [
        RandomResizedCrop,
        RandomHorizontalFlip,
        ColorJitter,
        RandomGaussianBlur,
    ]
    assert _types(second)[-2:] == [RandomGaussianBlur, RandomSolarize]
    first, second = presets.byol((28, 28, 1), blur=False).pipelines
    assert RandomGaussianBlur not in _types(first) + _types(second)
    assert _types(second)[-1] is RandomSolarize
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    views = presets.byol((28, 28, 1))(images, seed=tf.constant([1, 2]))
    assert [tuple(v.shape) for v in views] == [(5, 28, 28, 1)] * 2
    assert all(v.dtype == tf.float32 for v in views)


def test_byol_views_are_asymmetric_blur_then_solarize():
    # Constant images are left unchanged by crop, flip and blur; with no colour jitter only
    # solarization (0.8 -> 0.2) changes them: never in view 1, in about 20% of view 2.
    augmenter = presets.byol((8, 8, 1), color_probability=0.0)
    images = np.full((2000, 8, 8, 1), 0.8, np.float32)
    first, second = augmenter(images, seed=tf.constant([3, 4]))
    np.testing.assert_allclose(first.numpy(), 0.8, atol=1e-6)
    solarized = np.all(np.abs(second.numpy() - 0.2) < 1e-6, axis=(1, 2, 3))
    unchanged = np.all(np.abs(second.numpy() - 0.8) < 1e-6, axis=(1, 2, 3))
    assert np.all(solarized | unchanged)
    assert solarized.mean() == pytest.approx(0.2, abs=0.03)
    # Noise images: every first view is blurred, only 10% of second views, so the first views
    # are much smoother (smaller mean absolute difference between neighbouring pixels).
    noise = np.random.default_rng(0).random((500, 16, 16, 3), dtype=np.float32)
    augmenter = presets.byol((16, 16, 3), crop_scale=(1.0, 1.0), solarize_probabilities=(0, 0))
    first, second = augmenter(noise, seed=tf.constant([5, 6]))

    def roughness(views):
        return np.mean(np.abs(np.diff(views.numpy(), axis=2)))

    assert roughness(first) < 0.8 * roughness(second)


def test_byol_preset_views_are_reproducible_and_serializable():
    augmenter = presets.byol((16, 16, 3))
    images = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    views = augmenter(images, seed=tf.constant([8, 3]))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(augmenter))
    for a, b in zip(views, restored(images, seed=tf.constant([8, 3]))):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_default_augmenter_is_the_byol_preset():
    model = BYOL(
        backbones.SmallResNet((8, 8, 1), widths=(4,)),
        projection_hidden_dim=8,
        prediction_hidden_dim=8,
        projection_dim=4,
    )
    first, second = model.augmenter.pipelines
    assert _types(second)[-1] is RandomSolarize and RandomSolarize not in _types(first)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(image_shape=(32, 32)), r"`image_shape` must be .*received \(32, 32\).*Fix"),
        (dict(blur_probabilities=0.5), r"`blur_probabilities` must be a pair .*received 0.5.*Fix"),
        (
            dict(solarize_probabilities=(0.0, 0.2, 0.3)),
            r"`solarize_probabilities` must be a pair .*received \(0.0, 0.2, 0.3\).*Fix",
        ),
        (dict(blur="yes"), r"`blur` must be True or False; received 'yes'.*Fix"),
        (dict(blur_probabilities=(1.5, 0.1)), r"`probability` must be .*received 1.5.*Fix"),
        (dict(solarize_probabilities=(0, -1)), r"`probability` must be .*received -1.*Fix"),
        (dict(crop_scale=(0.0, 1.0)), r"`scale` must be .*received \(0.0, 1.0\).*Fix"),
    ],
)
def test_bad_preset_arguments_raise(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        presets.byol(**{"image_shape": (32, 32, 3), **kwargs})


def test_bad_method_arguments_raise():
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,))
    with pytest.raises(ValueError, match=r"`use_predictor` must be True or False; received 1"):
        BYOL(encoder, use_predictor=1)
    with pytest.raises(ValueError, match=r"`momentum` must be a number in \[0, 1\]"):
        BYOL(encoder, momentum=1.5)
    with pytest.raises(ValueError, match=r"Head sizes must be positive.*Fix"):
        BYOL(encoder, projection_dim=0)
    model = make_model()
    views = tuple(tf.zeros((4, 8, 8, 1)) for _ in range(3))
    with pytest.raises(ValueError, match=r"exactly 2 views per image; received 3.*Fix"):
        model.compute_ssl_loss(views, training=False)
