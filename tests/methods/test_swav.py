import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment import MultiViewAugmenter, RandomResizedCrop, RandomSolarize
from keras_ssl.augment.multicrop import multicrop
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.methods import REGISTRY
from keras_ssl.methods.swav import SwAV

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "swav_fashion_mnist.py"
HEAD = {"projection_hidden_dim": 8, "projection_dim": 4, "num_prototypes": 6}


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,), synchronized_bn=True)
    options = {
        "augmenter": multicrop((8, 8, 1), local_size=4, num_local=2),
        # The battery fits one step per epoch: the prototypes are frozen for the first step
        # (SwAV's default, 1 epoch) and trained in the second.
        "synchronized_bn": True,
        "probe_classes": 3,
        **HEAD,
    }
    return SwAV(encoder, **{**options, **kwargs})


def make_queue_model(**kwargs):
    # A queue of one global batch, filled from step 0: the second step's Sinkhorn uses it.
    return make_model(**{"queue_length": GLOBAL_BATCH, "queue_start_epochs": 0, **kwargs})


def make_data(steps=2, seed=0, num_local=2):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    views = tuple(rng.random((n, 8, 8, 1), dtype=np.float32) for _ in range(2))
    views += tuple(rng.random((n, 4, 4, 1), dtype=np.float32) for _ in range(num_local))
    return {"views": views, "labels": rng.integers(0, 3, n)}


def queue_state(model):
    return {
        "keys": model.queue.keys.numpy(),
        "pointer": model.queue.pointer.numpy(),
        "fill": model.queue_fill.numpy(),
        "prototypes": model.prototypes.kernel.numpy(),
    }


# ------------------------------------------------------------------- NumPy references
def sinkhorn_reference(scores, epsilon=0.05, iterations=3):
    """Q* = Diag(u) exp(C^T Z / eps) Diag(v) (the paper's Sec. 3.1) by Sinkhorn-Knopp scaling
    vectors, codes = B Q* per example; float64."""
    kernel = np.exp(np.asarray(scores, np.float64).T / epsilon)  # K x B
    k, b = kernel.shape
    v = np.ones(b)
    for _ in range(iterations):
        u = (1.0 / k) / (kernel @ v)
        v = (1.0 / b) / (kernel.T @ u)
    return (u[:, None] * kernel * v[None, :]).T * b


def swapped_loss_reference(codes, scores, temperature=0.1):
    """Eq. 1-2 with multi-crop: each large crop's code predicted by every other crop."""
    total, pairs = 0.0, 0
    for g, q in enumerate(codes):
        for v, s in enumerate(scores):
            if v != g:
                x = np.asarray(s, np.float64) / temperature
                log_p = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
                total, pairs = total - np.sum(q * log_p, axis=1), pairs + 1
    return np.mean(total / pairs)


def _projections(model, views):
    """Unit projections of every crop, computed like SwAV: large crops in one encoder pass,
    small crops (one size) in another, the projector on all of them together."""
    large = model.encoder(tf.concat(views[:2], 0), training=True)
    small = model.encoder.call(tf.concat(views[2:], 0), training=True)
    z = model.projector(tf.concat([large, small], 0), training=True).numpy()
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    return z.reshape(len(views), -1, z.shape[-1])


def _twin(model):
    twin = SwAV.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    return twin


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    # The queue model (a queue of one global batch, filled from step 0, used by the second
    # step's Sinkhorn), so that every check covers the queue; the replica check and the round
    # trip compare it.
    make_model = staticmethod(make_queue_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(queue_state)
    # Replicas: each replica scores its half of the (gathered, identical) queue: the union of
    # the two Sinkhorn batches is the single device's. The queue's keys are unit projections,
    # forward values: synchronized BatchNorm's float32 noise (1e-6 in the encoder features)
    # grows through the projector's BatchNorm and the normalisation to ~1e-5 in the keys before
    # any update (measured: 7e-6 at step 0, 2e-5 after a step), hence atol 5e-5 for this check.
    # Scoring the whole queue on each replica instead moves the second step's loss by 0.05
    # (measured), and the queue alone moves it by 0.2.
    replica_tolerance = {"atol": 5e-5}

    def check_history(self, history):
        assert set(history) == {"loss", "probe_loss", "probe_accuracy"}

    def check_restored(self, restored):
        assert int(restored.queue_fill.numpy()) == GLOBAL_BATCH
        assert restored.queue_length == GLOBAL_BATCH and restored.freeze_prototypes_epochs == 1


# Synchronized BatchNorm sums its moments over replicas in another order than one device, so
# the two runs' step-0 losses differ by ~1e-6 relative; Sinkhorn's exp(s / 0.05) and the
# softmax(s / 0.1) amplify that to ~6e-5 relative in the weight updates (measured, with or
# without the queue and the freeze). At the battery's default learning rate (0.05) that is
# ~3e-6 absolute in the stem kernel; 10x smaller steps keep it within the helper's 1e-6. A
# per-replica Sinkhorn or BatchNorm changes the updates by 270-880% instead (measured), and a
# wrong gradient scale by 50%.
EQUIVALENCE_OPTIMIZER = {"class_name": "SGD", "config": {"learning_rate": 5e-3, "momentum": 0.9}}


def test_two_replicas_equal_one_with_global_sinkhorn():
    # Without the queue, at the battery's default tolerances.
    testing.check_replica_equivalence(
        make_model, make_data(), GLOBAL_BATCH, optimizer=EQUIVALENCE_OPTIMIZER
    )


# ------------------------------------------------------------------------ SwAV specifics
def test_one_step_loss_is_the_swapped_prediction_of_sinkhorn_codes():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, temperature=0.2, epsilon=0.1)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.plan_schedules(steps_per_epoch=1, epochs=4)  # train_on_batch: no fit to plan it
    twin = _twin(model)
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    z = _projections(twin, views)
    scores = z @ twin.prototypes.kernel.numpy()  # [4 crops, n, K]
    # Codes only for the 2 large crops; the 2 small crops predict both of them.
    codes = [sinkhorn_reference(scores[i], 0.1, 3) for i in range(2)]
    expected = swapped_loss_reference(codes, scores, 0.2)
    logs = model.train_on_batch({"views": views}, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-5)


def test_small_crops_are_predictors_not_targets():
    # Changing a small crop changes the loss only through its own predictions: its pairs
    # with the two large crops' codes (which it does not move).
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    other = tuple(tf.constant(v) for v in make_data(steps=1, seed=3)["views"])
    mixed = views[:3] + other[3:]
    for candidate in (views, mixed):
        z = _projections(model, candidate)
        scores = z @ model.prototypes.kernel.numpy()
        codes = [sinkhorn_reference(scores[i]) for i in range(2)]
        terms, _, updates = model.compute_ssl_loss(candidate, training=True)
        assert updates == {}  # no queue
        expected = swapped_loss_reference(codes, scores)
        np.testing.assert_allclose(float(terms["loss"]), expected, rtol=1e-5, atol=1e-5)
    a, _, _ = model.compute_ssl_loss(views, training=True)
    b, _, _ = model.compute_ssl_loss(mixed, training=True)
    assert abs(float(a["loss"]) - float(b["loss"])) > 1e-4


def test_prototypes_are_unit_columns_at_construction_and_after_every_step():
    keras.utils.set_random_seed(0)
    model = make_model(freeze_prototypes_epochs=0)
    norms = np.linalg.norm(model.prototypes.kernel.numpy(), axis=0)
    np.testing.assert_allclose(norms, 1.0, rtol=0, atol=1e-6)
    assert model.prototypes.kernel.shape == (4, 6) and not model.prototypes.use_bias

    class RecordNorms(keras.callbacks.Callback):
        norms = []

        def on_train_batch_end(self, batch, logs=None):
            self.norms.append(np.linalg.norm(self.model.prototypes.kernel.numpy(), axis=0))

    model.compile(optimizer=keras.optimizers.SGD(5.0))  # big steps leave the unit sphere
    before = model.prototypes.kernel.numpy().copy()
    record = RecordNorms()
    model.fit(testing.make_dataset(make_data(steps=3), GLOBAL_BATCH), callbacks=[record], verbose=0)
    np.testing.assert_allclose(np.array(record.norms), 1.0, rtol=0, atol=1e-6)
    assert np.abs(model.prototypes.kernel.numpy() - before).max() > 1e-2


class RecordEpochs(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.prototypes, self.projector, self.fill = [], [], []

    def on_epoch_end(self, epoch, logs=None):
        self.prototypes.append(self.model.prototypes.kernel.numpy().copy())
        self.projector.append(self.model.projector.output_layer.kernel.numpy().copy())
        if self.model.queue is not None:
            self.fill.append(int(self.model.queue_fill.numpy()))


@pytest.mark.parametrize("batches", [2, 3])
def test_prototypes_are_frozen_for_exactly_the_first_epoch_for_any_dataset_size(batches):
    keras.utils.set_random_seed(0)
    model = make_model(freeze_prototypes_epochs=1)
    model.compile(optimizer=keras.optimizers.AdamW(0.05, weight_decay=0.1))
    initial = model.prototypes.kernel.numpy().copy()
    projector = model.projector.output_layer.kernel.numpy().copy()
    record = RecordEpochs()
    dataset = testing.make_dataset(make_data(steps=batches), GLOBAL_BATCH)
    model.fit(dataset, epochs=2, callbacks=[record], verbose=0)
    # Frozen through epoch 1 (weight decay only shrinks the columns, which the normalisation
    # after every step undoes), trained in epoch 2; the projector trains from the start.
    np.testing.assert_allclose(record.prototypes[0], initial, rtol=0, atol=1e-6)
    assert np.abs(record.prototypes[1] - initial).max() > 1e-3
    assert np.abs(record.projector[0] - projector).max() > 1e-3
    assert bool(model.prototypes_frozen_at(batches - 1))
    assert not bool(model.prototypes_frozen_at(batches))


def test_queue_fills_from_its_start_epoch_and_is_used_once_full():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, queue_length=2 * GLOBAL_BATCH, queue_start_epochs=1)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    record = RecordEpochs()
    data = make_data(steps=2)
    model.fit(testing.make_dataset(data, GLOBAL_BATCH), epochs=3, callbacks=[record], verbose=0)
    # 2 steps per epoch of 8 images: nothing counted in epoch 1, then 8 images per step.
    assert record.fill == [0, 16, 16]

    # The queue holds the unit projections [z_1 | z_2] of the last 16 images' large crops.
    twin = _twin(model)
    views = tuple(tf.constant(v[:GLOBAL_BATCH]) for v in data["views"])
    terms, _, updates = twin.compute_ssl_loss(views, training=True)
    z = _projections(twin, views)
    np.testing.assert_allclose(
        updates["large_projections"], np.concatenate([z[0], z[1]], -1), rtol=1e-5, atol=1e-6
    )
    keys = model.queue.keys.numpy()
    np.testing.assert_allclose(np.linalg.norm(keys.reshape(16, 2, 4), axis=-1), 1.0, atol=1e-5)

    # Full: each large crop's Sinkhorn batch is its 16 queued projections + the batch.
    kernel = twin.prototypes.kernel.numpy()
    scores = z @ kernel
    codes = [
        sinkhorn_reference(np.concatenate([keys[:, 4 * i : 4 * (i + 1)] @ kernel, scores[i]]))[16:]
        for i in range(2)
    ]
    np.testing.assert_allclose(
        float(terms["loss"]), swapped_loss_reference(codes, scores), rtol=1e-5, atol=1e-5
    )
    # Not full yet: the queue takes no part.
    twin.queue_fill.assign(8)
    partial, _, _ = twin.compute_ssl_loss(views, training=True)
    plain = swapped_loss_reference([sinkhorn_reference(scores[i]) for i in range(2)], scores)
    np.testing.assert_allclose(float(partial["loss"]), plain, rtol=1e-5, atol=1e-5)
    assert abs(plain - float(terms["loss"])) > 1e-4


def test_queue_length_must_be_a_multiple_of_the_global_batch():
    model = make_model(queue_length=12)
    model.compile(optimizer="sgd")
    dataset = testing.make_dataset(make_data(steps=1), GLOBAL_BATCH)
    with pytest.raises(ValueError, match=r"received queue_length=12 with a global batch of 8.*16"):
        model.fit(dataset, epochs=1, verbose=0)


def test_trains_from_the_input_pipeline_and_learns():
    keras.utils.set_random_seed(0)
    augmenter = multicrop(
        (8, 8, 1), local_size=4, num_local=2, global_scale=(0.5, 1.0), local_scale=(0.2, 0.5)
    )
    model = make_model(
        augmenter=augmenter,
        probe_classes=None,
        num_prototypes=16,
        projection_hidden_dim=32,
        projection_dim=8,
        freeze_prototypes_epochs=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    grids = np.random.default_rng(0).random((64, 2, 2, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    dataset = make_ssl_dataset(images, batch_size=16, augmenter=augmenter, seed=1, repeat=True)
    loss = model.fit(dataset, epochs=6, steps_per_epoch=8, verbose=0).history["loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0] - 0.3


def test_trains_from_raw_uint8_images_with_in_step_multicrop():
    keras.utils.set_random_seed(0)
    model = make_queue_model()
    model.compile(optimizer="adam")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
    history = model.fit(images, rng.integers(0, 3, 16), batch_size=8, epochs=1, verbose=0).history
    assert set(history) == {"loss", "probe_loss", "probe_accuracy"}
    assert all(np.isfinite(v[0]) for v in history.values())
    # Evaluation scores with the queue but never enqueues nor moves the prototypes.
    state = queue_state(model)
    logs = model.evaluate(images, batch_size=8, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"])
    for key, value in queue_state(model).items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)


def test_defaults_are_the_papers():
    # Caron et al. 2020 (Sec. 4, appendix A): 2048 -> 128 projection MLP, 3000 prototypes,
    # temperature 0.1, epsilon 0.05, 3 Sinkhorn iterations, prototypes frozen the first epoch,
    # queue off at batch 4096 (3840 from epoch 15 at batch 256), multi-crop 2 x 224 + 6 x 96.
    assert REGISTRY["swav"] is SwAV
    model = SwAV(backbones.SmallResNet((28, 28, 1), widths=(4,)))
    assert (model.projection_hidden_dim, model.projection_dim) == (2048, 128)
    assert model.projector.hidden_dims == (2048,) and model.projector.output_dim == 128
    assert (model.num_prototypes, model.temperature, model.epsilon) == (3000, 0.1, 0.05)
    assert model.sinkhorn_iterations == 3 and model.freeze_prototypes_epochs == 1
    assert (model.queue_length, model.queue_start_epochs, model.queue) == (0, 15, None)
    shapes = model.augmenter.compute_output_shape((None, 28, 28, 1))
    assert shapes == ((None, 28, 28, 1),) * 2 + ((None, 12, 12, 1),) * 6
    crops = [pipeline[0] for pipeline in model.augmenter.pipelines]
    assert all(isinstance(crop, RandomResizedCrop) for crop in crops)
    # SwAV's 14-100 % / 5-14 % crops, adapted to 28 px (global crops keep >= 20 px of the
    # side, local ones >= 12 px and reach the smallest global crop); 224 px keeps SwAV's values
    # (tests/augment/test_adaptive_defaults.py).
    large, small = (20 / 28) ** 2, (12 / 28) ** 2
    scales = np.array([crop.scale for crop in crops])
    np.testing.assert_allclose(scales, [(large, 1.0)] * 2 + [(small, large)] * 6, rtol=1e-12)
    assert not any(
        isinstance(layer, RandomSolarize) for p in model.augmenter.pipelines for layer in p
    )
    model.plan_schedules(steps_per_epoch=10, epochs=100)
    assert bool(model.prototypes_frozen_at(9)) and not bool(model.prototypes_frozen_at(10))
    queued = SwAV(model.encoder, augmenter=model.augmenter, queue_length=3840, **HEAD)
    queued.plan_schedules(steps_per_epoch=10, epochs=100)
    assert not bool(queued.queue_active_at(149)) and bool(queued.queue_active_at(150))
    assert queued.queue.keys.shape == (3840, 8)


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "swav" and config.augment.preset == "multicrop"
    kwargs = config.method_kwargs
    assert (kwargs.temperature, kwargs.epsilon, kwargs.sinkhorn_iterations) == (0.1, 0.05, 3)
    assert kwargs.freeze_prototypes_epochs == 1 and kwargs.queue_length == 0
    assert config.augment.kwargs.num_local == 6 and config.augment.kwargs.local_size == 14
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, SwAV) and model.augmenter.num_views == 2 + 6
    assert (model.temperature, model.epsilon, model.sinkhorn_iterations) == (0.1, 0.05, 3)
    assert model.queue is None and model.freeze_prototypes_epochs == 1


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0}, r"`temperature` must be a positive number; received 0.*0\.1"),
        ({"epsilon": -0.05}, r"`epsilon` must be a positive number; received -0.05.*0\.05"),
        ({"sinkhorn_iterations": 0}, r"`sinkhorn_iterations` must be an integer >= 1.*Fix"),
        ({"num_prototypes": 1}, r"`num_prototypes` must be an integer >= 2; received 1"),
        ({"projection_dim": 2.5}, r"`projection_dim` must be an integer >= 1; received 2.5"),
        ({"projection_hidden_dim": 0}, r"`projection_hidden_dim` must be an integer >= 1"),
        ({"queue_length": -1}, r"`queue_length` must be an integer >= 0; received -1.*3840"),
        ({"queue_start_epochs": -1}, r"`queue_start_epochs`.*received -1.*Fix"),
        ({"freeze_prototypes_epochs": "one"}, r"`freeze_prototypes_epochs`.*received 'one'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_views_must_start_with_two_large_crops_of_the_encoder_size():
    model = make_model()
    with pytest.raises(ValueError, match=r"2 large crops.*received 1 view\(s\).*Fix"):
        model.compute_ssl_loss((tf.zeros((2, 8, 8, 1)),), training=False)
    one_view = MultiViewAugmenter([RandomResizedCrop(8, 8)], num_views=1)
    with pytest.raises(ValueError, match=r"augmenter with 2 large crops.*1 view\(s\)"):
        make_model(augmenter=one_view)
    with pytest.raises(ValueError, match=r"view 0 has shape \(6, 6, 1\).*global_size=None"):
        make_model(augmenter=multicrop((8, 8, 1), global_size=6, local_size=4))
    fixed = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(4)], name="flat"
    )
    with pytest.raises(ValueError, match=r"encoder 'flat' cannot take \(4, 4, 1\).*local_size"):
        SwAV(fixed, augmenter=multicrop((8, 8, 1), local_size=4, num_local=2), **HEAD)
    # Resizing the small crops to the encoder input works with any encoder.
    SwAV(fixed, augmenter=multicrop((8, 8, 1), local_size=8, num_local=2), **HEAD)
