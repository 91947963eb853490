import copy
import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, losses, testing
from keras_ssl.augment import (
    ColorJitter,
    MultiViewAugmenter,
    RandomGaussianBlur,
    RandomHorizontalFlip,
    RandomResizedCrop,
    presets,
)
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.methods.moco import MoCo
from keras_ssl.methods.shuffle_bn import shuffle_permutation

GLOBAL_BATCH = 8
QUEUE = 24  # three global batches: the third step fills it, the fourth replaces the oldest
CONFIG_PATH = pathlib.Path(__file__).resolve().parents[2] / "configs" / "moco_fashion_mnist.py"


def make_encoder(synchronized_bn=True, widths=(4,)):
    return backbones.SmallResNet((8, 8, 1), widths=widths, synchronized_bn=synchronized_bn)


def make_model(synchronized_bn=True, widths=(4,), **kwargs):
    options = {"queue_size": QUEUE, "projection_dim": 8, "momentum": 0.9, "probe_classes": 3}
    return MoCo(make_encoder(synchronized_bn, widths), **{**options, **kwargs})


def make_unshuffled_model():
    return make_model(widths=(4, 8), shuffle_bn=False)


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    views = tuple(rng.random((n, 8, 8, 1), dtype=np.float32) for _ in range(2))
    return {"views": views, "labels": rng.integers(0, 3, n)}


def numpy(variable):
    return keras.ops.convert_to_numpy(variable)


def moco_state(model):
    """Queue, pointer and every key-encoder weight (trainable and BatchNorm statistics)."""
    state = {"queue": numpy(model.queue.keys), "pointer": numpy(model.queue.pointer)}
    teacher = model.key_encoder.weights + model.key_projector.weights
    state.update({f"key_encoder_{i}": numpy(w) for i, w in enumerate(teacher)})
    return state


def normalize(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def info_nce_reference(query, key, queue, temperature):
    """MoCo's Algorithm 1: logits [q.k+, q.queue] / t, cross-entropy with label 0."""
    q, k, negatives = normalize(query), normalize(key), normalize(queue)
    logits = np.concatenate([np.sum(q * k, 1, keepdims=True), q @ negatives.T], 1) / temperature
    top = logits.max(1, keepdims=True)
    return -logits[:, 0] + (top[:, 0] + np.log(np.exp(logits - top).sum(1)))


def expected_step(twin, views, step, splits):
    """Queries and keys of one step, computed outside the model from MoCo's definition.

    Queries: the encoder on each of ``splits`` consecutive groups of view 1. Keys: view 2 in
    the order of ``shuffle_permutation(n, step)``, the key encoder on each of ``splits`` groups
    of the shuffled batch, L2-normalised, then put back in batch order.
    """
    v1, v2 = (np.asarray(v) for v in views)
    queries = np.concatenate(
        [twin.projector(twin.encoder(g, training=True)) for g in np.split(v1, splits)]
    )
    permutation = shuffle_permutation(len(v2), step).numpy()
    groups = np.split(v2[permutation], splits)
    shuffled = np.concatenate(
        [twin.key_projector(twin.key_encoder(g, training=True)) for g in groups]
    )
    keys = np.empty_like(shuffled)
    keys[permutation] = shuffled
    return queries, normalize(keys)


# --------------------------------------------------------------------------------- battery
class TestBattery(testing.MethodBattery):
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(moco_state)
    # Shuffle-BN ties BatchNorm groups to the device layout (see the next test), so the exact
    # 1-vs-2-replica check runs with it off; synchronised BatchNorm makes the groups global.
    replica_model = staticmethod(make_unshuffled_model)

    def check_restored(self, restored):
        assert isinstance(restored, MoCo)  # and moco_state restored (state_fn)


def test_shuffle_bn_on_one_device_with_two_splits_equals_two_replicas():
    """The strongest property with shuffle-BN on: 1 replica x 2 BatchNorm groups computes the
    losses, trainable weights, key encoder and queue of 2 replicas x 1 group (per-replica BN).

    Only BatchNorm moving statistics differ (one EMA update per group on one device, one per
    replica on two; training mode never reads them), so they are excluded.
    """
    strategy = testing.two_replica_strategy()
    data = make_data()

    def make():
        return make_model(synchronized_bn=False, widths=(4, 8), probe_classes=None)

    keras.utils.set_random_seed(0)
    single = make()
    single.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    with strategy.scope():
        mirrored = make()
        mirrored.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    mirrored.set_weights(single.get_weights())
    histories = []
    for model in (single, mirrored):
        dataset = testing.make_dataset(data, GLOBAL_BATCH)
        histories.append(model.fit(dataset, epochs=1, shuffle=False, verbose=0).history)
    np.testing.assert_allclose(histories[1]["loss"], histories[0]["loss"], rtol=1e-5, atol=1e-5)

    def compared(model):
        moving = ("moving_mean", "moving_variance")
        return [(w.path, numpy(w)) for w in model.weights if not w.path.endswith(moving)]

    for (path, a), (_, b) in zip(compared(single), compared(mirrored)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=path)
    assert int(numpy(single.queue.pointer)) == int(numpy(mirrored.queue.pointer)) == 16
    # Each replica updated its own copy of the queue with the same gathered keys.
    copies = [v.numpy() for v in mirrored.queue.keys.value.values]
    np.testing.assert_array_equal(copies[0], copies[1])
    # The keys really went through per-group BatchNorm: one group of 8 gives other keys.
    _, split_keys = expected_step(single, data["views"], step=0, splits=2)
    _, whole_keys = expected_step(single, data["views"], step=0, splits=1)
    assert np.abs(split_keys - whole_keys).max() > 1e-3


# ------------------------------------------------------------------------ MoCo behaviour
def test_loss_is_info_nce_against_the_queue_and_the_queue_is_a_ring_of_the_step_keys():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, momentum=0.8)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    twin = MoCo.from_config(model.get_config())
    initial_queue = numpy(model.queue.keys)
    np.testing.assert_allclose(np.linalg.norm(initial_queue, axis=1), 1.0, rtol=1e-6, atol=1e-6)
    assert int(numpy(model.queue.pointer)) == 0
    initial_online = [numpy(w) for w in model.encoder.trainable_weights]
    data = make_data(steps=4)
    step_keys = []
    for step in range(4):
        views = tuple(v[step * GLOBAL_BATCH : (step + 1) * GLOBAL_BATCH] for v in data["views"])
        twin.set_weights(model.get_weights())
        queries, keys = expected_step(twin, views, step, splits=2)
        queue_before = numpy(model.queue.keys)
        logs = model.train_on_batch({"views": views}, return_dict=True)
        expected = info_nce_reference(queries, keys, queue_before, model.temperature).mean()
        np.testing.assert_allclose(
            logs["loss"], expected, rtol=1e-5, err_msg=f"step {step}", atol=1e-5
        )
        step_keys.append(keys)
        queue = numpy(model.queue.keys)
        if step == 0:
            # The key encoder moved by EMA: k = m k0 + (1 - m) q1, with k0 = q0 at the start.
            pairs = [
                (k, q)
                for k, q in zip(model.key_encoder.weights, model.encoder.weights)
                if q.trainable
            ]
            assert len(pairs) == len(initial_online)
            for (k, q1), q0 in zip(pairs, initial_online):
                np.testing.assert_allclose(numpy(k), 0.8 * q0 + 0.2 * numpy(q1), atol=1e-6)
        if step == 1:  # two steps: their keys in order, the rest untouched, pointer 2 x batch
            np.testing.assert_allclose(queue[:16], np.concatenate(step_keys), atol=1e-6)
            np.testing.assert_array_equal(queue[16:], initial_queue[16:])
            assert int(numpy(model.queue.pointer)) == 16
        if step == 2:  # three steps of 8 fill the 24 keys exactly: the pointer wraps to 0
            assert int(numpy(model.queue.pointer)) == 0
    # Step 3 filled the queue (pointer wrapped to 0), step 4 replaced the oldest keys.
    np.testing.assert_allclose(queue[:8], step_keys[3], atol=1e-6)
    np.testing.assert_allclose(queue[8:], np.concatenate(step_keys[1:3]), atol=1e-6)
    assert int(numpy(model.queue.pointer)) == 8


def test_symmetric_loss_averages_both_directions_and_enqueues_both_key_views():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, symmetric=True, version="v1", queue_size=32)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    twin = MoCo.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    views = make_data(steps=1)["views"]
    q1, k2 = expected_step(twin, views, 0, splits=2)
    q2, k1 = expected_step(twin, views[::-1], 0, splits=2)
    queue = numpy(model.queue.keys)
    logs = model.train_on_batch({"views": views}, return_dict=True)
    t = model.temperature
    expected = (info_nce_reference(q1, k2, queue, t) + info_nce_reference(q2, k1, queue, t)) / 2
    np.testing.assert_allclose(logs["loss"], expected.mean(), rtol=1e-5, atol=1e-5)
    # Unit-norm keys, eager twin vs compiled step: atol 1e-5 as in test_nnclr's enqueue check.
    np.testing.assert_allclose(numpy(model.queue.keys)[:16], np.concatenate([k1, k2]), atol=1e-5)
    assert int(numpy(model.queue.pointer)) == 16


def test_resuming_from_a_checkpoint_continues_the_same_queue(tmp_path):
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    data = make_data(steps=3)
    first = {
        key: value[:16] if key == "labels" else tuple(v[:16] for v in value)
        for key, value in data.items()
    }
    model.fit(testing.make_dataset(first, GLOBAL_BATCH), epochs=1, verbose=0)
    path = os.path.join(tmp_path, "moco.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, MoCo)
    for key, value in moco_state(model).items():
        np.testing.assert_array_equal(moco_state(restored)[key], value, err_msg=key)
    assert int(numpy(restored.optimizer.iterations)) == 2
    third = {"views": tuple(v[16:] for v in data["views"]), "labels": data["labels"][16:]}
    for m in (model, restored):
        m.train_on_batch(third)
    np.testing.assert_array_equal(numpy(restored.queue.keys), numpy(model.queue.keys))
    assert int(numpy(restored.queue.pointer)) == int(numpy(model.queue.pointer)) == 0
    for a, b in zip(restored.weights, model.weights):
        np.testing.assert_allclose(numpy(a), numpy(b), rtol=1e-6, atol=1e-7, err_msg=b.path)


def test_evaluate_does_not_touch_the_queue():
    model = make_model()
    model.compile(optimizer="sgd")
    before = numpy(model.queue.keys)
    model.evaluate(testing.make_dataset(make_data(), GLOBAL_BATCH), verbose=0)
    np.testing.assert_array_equal(numpy(model.queue.keys), before)
    assert int(numpy(model.queue.pointer)) == 0


def test_the_step_enqueues_the_keys_its_loss_returned():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    views = tuple(tf.constant(v[:GLOBAL_BATCH]) for v in make_data()["views"])
    # Key encoder == query encoder and no learning: the loss's keys are the step's keys.
    _, _, updates = model.compute_ssl_loss(views, training=True)
    model.train_on_batch({"views": views})
    keys = numpy(model.queue.keys)[:GLOBAL_BATCH]
    np.testing.assert_allclose(keys, numpy(updates["keys"]), rtol=1e-5, atol=1e-6)
    assert int(numpy(model.queue.pointer)) == GLOBAL_BATCH


def test_info_nce_with_a_queue_matches_hand_and_numpy_values():
    # Hand value: q = k = e1, queue = {e2, -e1}, t = 1: -log(e / (e + 1 + 1/e)).
    inputs = {
        "query": np.array([[1.0, 0.0]], np.float32),
        "positive": np.array([[1.0, 0.0]], np.float32),
        "negatives": np.array([[0.0, 1.0], [-1.0, 0.0]], np.float32),
        "temperature": 1.0,
    }
    expected = -np.log(np.e / (np.e + 1 + 1 / np.e))
    testing.run_loss_test(losses.info_nce, inputs, expected=expected)
    rng = np.random.default_rng(0)
    inputs = {
        "query": rng.normal(size=(6, 5)).astype(np.float32),
        "positive": rng.normal(size=(6, 5)).astype(np.float32),
        "negatives": normalize(rng.normal(size=(24, 5))).astype(np.float32),
        "temperature": 0.07,
    }
    testing.run_loss_test(
        losses.info_nce,
        inputs,
        reference_fn=lambda query, positive, negatives, temperature: info_nce_reference(
            query, positive, negatives, temperature
        ),
    )


def test_versions_set_head_temperature_and_augmentation():
    encoder = make_encoder()
    v1, v2 = MoCo(encoder, version="v1"), MoCo(encoder)
    assert (v1.temperature, v2.temperature) == (0.07, 0.2)
    assert (v2.version, v2.queue_size, v2.momentum, v2.symmetric) == ("v2", 65536, 0.999, False)
    # MoCo keeps m constant (no schedule, so any dataset, even endless, needs no plan).
    assert v2.final_momentum is None and not v2.uses_epoch_schedules
    assert float(v2.momentum_at(10**6)) == pytest.approx(0.999)
    assert v1.projector.hidden_dims == () and v1.projector.output_dim == 128
    assert v2.projector.hidden_dims == (4,)  # the feature size
    assert numpy(v2.queue.keys).shape == (65536, 128)
    # The default augmentation is the version's preset adapted to these 8x8 gray images (the
    # papers' recipes at 224 px RGB are checked in tests/augment/test_adaptive_defaults.py):
    # MoCo v1 jitters every image, v2 with probability 0.8; 1-channel images get brightness and
    # contrast only; no blur below 64 px; crops of 20 px or more, i.e. the whole 8-px image.
    for model, preset, probability in ((v1, "moco_v1", 1.0), (v2, "moco_v2", 0.8)):
        reference = presets.default_augmenter(preset, (8, 8, 1))
        layers = model.augmenter.views[0]
        assert [type(layer) for layer in layers] == [type(layer) for layer in reference.views[0]]
        jitter = next(layer for layer in layers if isinstance(layer, ColorJitter))
        assert (jitter.brightness, jitter.contrast, jitter.probability) == (0.8, 0.8, probability)
        assert not any(isinstance(layer, RandomGaussianBlur) for layer in layers)
        assert layers[0].scale == (1.0, 1.0)
    assert v1.augmenter.views[0][2].hue == 0.0  # v1's hue 0.4 needs colour
    assert (v1.default_preset, v2.default_preset) == ("moco_v1", "moco_v2")
    config = v1.get_config()
    assert MoCo.from_config(copy.deepcopy(config)).get_config() == config


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"version": "v3"}, "`version` must be one of .*received 'v3'"),
        ({"temperature": 0.0}, "`temperature` must be a positive number; received 0.0"),
        ({"temperature": -0.2}, "`temperature` must be a positive number; received -0.2"),
        ({"queue_size": 0}, "`queue_size` must be an integer >= 1; received 0"),
        ({"projection_dim": 2.5}, "`projection_dim` must be an integer >= 1; received 2.5"),
        ({"bn_splits": 0}, "`bn_splits` must be an integer >= 1; received 0"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MoCo(make_encoder(), **kwargs)


def test_queue_size_must_divide_by_the_global_batch():
    model = make_model(queue_size=20)
    model.compile(optimizer="sgd")
    dataset = testing.make_dataset(make_data(), GLOBAL_BATCH)
    with pytest.raises(ValueError, match=r"queue_size=20 with a global batch of 8 .*queue_size=16"):
        model.fit(dataset, epochs=1, verbose=0)
    symmetric = make_model(queue_size=24, symmetric=True)
    symmetric.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"x 2 views \(symmetric=True\) = 16 keys per step"):
        symmetric.fit(dataset, epochs=1, verbose=0)


def test_queue_size_is_checked_against_the_global_batch_over_replicas():
    # 4 images per replica divide 12, but the global batch of 8 does not.
    with testing.two_replica_strategy().scope():
        model = make_model(queue_size=12, shuffle_bn=False)
        model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"global batch of 8 \(4 per replica x 2 replicas\)"):
        model.fit(testing.make_dataset(make_data(), GLOBAL_BATCH), epochs=1, verbose=0)


def test_bad_batches():
    model = make_model(bn_splits=3, queue_size=48)
    model.compile(optimizer="sgd")
    dataset = testing.make_dataset(make_data(), GLOBAL_BATCH)
    with pytest.raises(ValueError, match="bn_splits=3 groups; received a per-replica batch of 8"):
        model.fit(dataset, epochs=1, verbose=0)
    images = np.zeros((12, 8, 8, 1), np.uint8)  # NumPy input: Keras leaves the batch size open
    model = make_model()
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="fixed size.*drop_remainder=True"):
        model.fit(images, batch_size=8, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="exactly 2 views"):
        model.compute_ssl_loss(tuple(tf.zeros((8, 8, 8, 1)) for _ in range(3)), training=False)


# ---------------------------------------------------------------------------- training
def test_trains_from_the_input_pipeline_and_learns():
    keras.utils.set_random_seed(0)
    augmenter = MultiViewAugmenter(
        [[RandomResizedCrop(8, 8, scale=(0.5, 1.0)), RandomHorizontalFlip()] for _ in range(2)]
    )
    model = make_model(probe_classes=None, augmenter=augmenter, queue_size=32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    # Smooth random images (2x2 grids upsampled) stay recognisable under crops and flips.
    grids = np.random.default_rng(0).random((64, 2, 2, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    dataset = make_ssl_dataset(
        images, batch_size=16, augmenter=model.augmenter, seed=1, repeat=True
    )
    loss = model.fit(dataset, epochs=10, steps_per_epoch=6, verbose=0).history["loss"]
    # Epoch 0 starts with a queue of random unit vectors (easy negatives); from epoch 1 on the
    # queue holds real keys and the loss must fall from there.
    assert np.mean(loss[-2:]) < np.mean(loss[1:3]) - 0.2, loss


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG_PATH)
    assert config.method == "moco" and config.method_kwargs["queue_size"] % config.batch_size == 0
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, MoCo) and model.queue_size == config.method_kwargs.queue_size
