import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment import MultiViewAugmenter, RandomResizedCrop
from keras_ssl.augment.multicrop import multicrop
from keras_ssl.backbones.vit import ViTTiny
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.layers import DropPath
from keras_ssl.losses.distillation import dino_loss
from keras_ssl.methods.dino import DINO

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "dino_fashion_mnist.py"
HEAD = {"out_dim": 32, "hidden_dim": 16, "bottleneck_dim": 8}


def tiny_vit():
    return ViTTiny((8, 8, 1), patch_size=4, dim=16, depth=2, num_heads=2)


def make_model(encoder=None, **kwargs):
    options = {
        "augmenter": multicrop((8, 8, 1), local_size=4, num_local=2),
        # The battery fits one step per epoch: every schedule moves every step (and the
        # prototypes are frozen for the first, DINO's default), so resuming must restore them.
        "warmup_teacher_temp_epochs": 3,
        "momentum_epochs": 4,
        **HEAD,
    }
    return DINO(encoder or tiny_vit(), **{**options, **kwargs})


def make_resnet_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {"head_batch_norm": True, "synchronized_bn": True, "probe_classes": 3}
    return make_model(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0, num_local=2):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    views = tuple(rng.random((n, 8, 8, 1), dtype=np.float32) for _ in range(2))
    views += tuple(rng.random((n, 4, 4, 1), dtype=np.float32) for _ in range(num_local))
    return {"views": views, "labels": rng.integers(0, 3, n)}


def state(model):
    """Every piece of DINO state: teacher encoder and head, centre."""
    teacher = model.teacher_encoder.weights + model.teacher_head.weights
    values = {f"teacher_{i}": keras.ops.convert_to_numpy(w) for i, w in enumerate(teacher)}
    values["center"] = model.center.numpy()
    return values


# ------------------------------------------------------------------------------- battery
class TestBattery(testing.MethodBattery):
    # The replica check and the round trip compare the teacher and the global centre. The
    # export check compares the served embeddings with model(images), which DINO computes with
    # its export_encoder, the teacher (DINO evaluates the teacher).
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(state)

    def check_restored(self, restored):
        assert restored.export_encoder is restored.teacher_encoder
        assert int(restored.optimizer.iterations) == 2
        # Warm-up over 3 steps: 0.04 + 0.03 * 2 / 3 at step 2, from the restored optimizer.
        step = restored.optimizer.iterations
        assert float(restored.teacher_temp_at(step)) == pytest.approx(0.06)


@pytest.mark.slow
def test_two_replicas_equal_one_with_a_synchronized_batch_norm_resnet():
    # Synchronized BatchNorm sums the moments over replicas in another order than one device;
    # through the backbone's and the head's BatchNorms (8 examples per replica) that float32
    # noise reaches about 1e-6 in the teacher outputs and the centre (measured: 1.08e-6).
    testing.check_replica_equivalence(
        make_resnet_model, make_data(), GLOBAL_BATCH, state_fn=state, atol=3e-6
    )


# ------------------------------------------------------------------------- DINO specifics
def _twin(model):
    twin = DINO.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    return twin


def test_one_step_loss_centre_and_teacher_follow_the_paper():
    keras.utils.set_random_seed(0)
    model = make_model(momentum=0.9, final_momentum=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.plan_schedules(steps_per_epoch=1, epochs=4)  # train_on_batch: no fit to plan it
    model.center.assign(np.linspace(-0.5, 0.5, 32).astype(np.float32))  # an old centre
    twin = _twin(model)
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    # Expected: teacher (EMA copies) on the 2 global crops, student on every crop at its size.
    globals_ = tf.concat(views[:2], 0)
    teacher = twin.teacher_head(twin.teacher_encoder(globals_, training=True), training=True)
    student_features = [
        twin.encoder(globals_, training=True),
        twin.encoder.call(tf.concat(views[2:], 0), training=True),
    ]
    student = twin.head(tf.concat(student_features, 0), training=True)
    teacher = tf.reshape(teacher, [2, GLOBAL_BATCH, 32])
    student = tf.reshape(student, [4, GLOBAL_BATCH, 32])
    old_center = model.center.numpy()
    expected = np.mean(dino_loss(teacher, student, old_center, 0.1, 0.04))  # step 0: 0.04
    logs = model.train_on_batch({"views": views}, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-5)
    # Centre: EMA (0.9) toward the mean teacher output over both global crops, after the step.
    batch_mean = tf.reduce_mean(tf.reshape(teacher, [-1, 32]), axis=0).numpy()
    np.testing.assert_allclose(
        model.center.numpy(), 0.9 * old_center + 0.1 * batch_mean, rtol=1e-5, atol=1e-6
    )
    # Teacher: t <- 0.9 t + 0.1 s for every trainable weight of encoder and head.
    pairs = list(
        zip(model.encoder.weights, model.teacher_encoder.weights, twin.teacher_encoder.weights)
    )
    pairs += list(zip(model.head.weights, model.teacher_head.weights, twin.teacher_head.weights))
    for online, teacher_weight, before in pairs:
        if online.trainable:
            np.testing.assert_allclose(
                teacher_weight.numpy(),
                0.9 * before.numpy() + 0.1 * online.numpy(),
                rtol=1e-6,
                atol=1e-6,
            )


def test_teacher_temperature_warms_up_linearly():
    model = make_model(warmup_teacher_temp_epochs=5)
    model.plan_schedules(steps_per_epoch=2, epochs=30)  # 5 epochs = 10 steps
    temps = [float(model.teacher_temp_at(step)) for step in (0, 5, 10, 50)]
    np.testing.assert_allclose(temps, [0.04, 0.055, 0.07, 0.07], rtol=1e-6, atol=1e-6)
    assert float(make_model(warmup_teacher_temp_epochs=0).teacher_temp_at(0)) == pytest.approx(0.07)


def test_local_crops_reach_only_the_student():
    keras.utils.set_random_seed(0)
    model = make_model()
    data, other = make_data(steps=1), make_data(steps=1, seed=5)
    views = tuple(tf.constant(v) for v in data["views"])
    mixed = views[:2] + tuple(tf.constant(v) for v in other["views"][2:])  # new local crops
    terms, _, updates = model.compute_ssl_loss(views, training=True)
    mixed_terms, _, mixed_updates = model.compute_ssl_loss(mixed, training=True)
    assert abs(float(terms["loss"]) - float(mixed_terms["loss"])) > 1e-4  # the student sees them
    # ... the teacher, whose outputs give the centre update, does not.
    np.testing.assert_array_equal(mixed_updates["batch_center"], updates["batch_center"])
    np.testing.assert_array_equal(terms["teacher_entropy"], mixed_terms["teacher_entropy"])


class RecordSchedules(keras.callbacks.Callback):
    """At the end of every epoch: the prototypes and the temperature of the next step."""

    def on_train_begin(self, logs=None):
        self.prototypes, self.temps = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.prototypes.append(self.model.head.prototypes.numpy().copy())
        step = self.model.optimizer.iterations
        self.temps.append(float(self.model.teacher_temp_at(step)))


@pytest.mark.parametrize("batches", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_epoch_schedules_end_after_exactly_their_epochs_for_any_dataset_size(batches):
    # Prototypes frozen for 1 epoch and the temperature warmed up over 2, on datasets of 2 and
    # 3 batches: the old schedules counted optimizer steps, so they ended after a fixed number
    # of steps, i.e. after a different number of epochs for each dataset size.
    keras.utils.set_random_seed(0)
    model = make_model(freeze_last_layer_epochs=1, warmup_teacher_temp_epochs=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    initial = model.head.prototypes.numpy().copy()
    bottleneck = model.head.bottleneck.kernel.numpy().copy()
    record = RecordSchedules()
    dataset = testing.make_dataset(make_data(steps=batches), GLOBAL_BATCH)
    model.fit(dataset, epochs=3, callbacks=[record], verbose=0)
    np.testing.assert_array_equal(record.prototypes[0], initial)  # frozen for all of epoch 1
    assert not np.array_equal(record.prototypes[1], initial)  # trained from epoch 2 on
    assert not np.array_equal(model.head.bottleneck.kernel.numpy(), bottleneck)
    # 0.04 -> 0.07 over 2 epochs: half way after epoch 1, at 0.07 after epoch 2.
    np.testing.assert_allclose(record.temps, [0.055, 0.07, 0.07], rtol=1e-6, atol=1e-6)
    assert float(model.teacher_temp_at(2 * batches - 1)) < 0.07
    assert int(model.schedule_steps_per_epoch.numpy()) == batches


def test_defaults_are_the_papers():
    # Caron et al. 2021 (Sec. 3 and appendix; main_dino.py): teacher temperature 0.04 -> 0.07
    # over the first 30 epochs, last layer frozen for the first epoch, teacher momentum 0.996
    # -> 1 on a cosine over the whole run, centre momentum 0.9, student temperature 0.1.
    model = DINO(tiny_vit(), augmenter=multicrop((8, 8, 1), local_size=4), **HEAD)
    assert (model.warmup_teacher_temp, model.teacher_temp) == (0.04, 0.07)
    assert model.warmup_teacher_temp_epochs == 30 and model.freeze_last_layer_epochs == 1
    assert (model.momentum, model.final_momentum, model.momentum_epochs) == (0.996, 1.0, None)
    assert (model.center_momentum, model.student_temp) == (0.9, 0.1)
    model.plan_schedules(steps_per_epoch=10, epochs=100)
    assert float(model.teacher_temp_at(150)) == pytest.approx(0.055)  # epoch 15 of 30
    assert float(model.teacher_temp_at(300)) == pytest.approx(0.07)
    assert bool(model.prototypes_frozen_at(9)) and not bool(model.prototypes_frozen_at(10))
    assert float(model.momentum_at(500)) == pytest.approx(0.998)  # half way through the run
    assert float(model.momentum_at(1000)) == pytest.approx(1.0)


def test_predict_and_export_encoder_use_the_teacher():
    model = make_model()
    for weight in model.teacher_encoder.weights:  # let the teacher drift from the student
        weight.assign(weight * 1.5 + 0.01)
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    pixels = images.astype(np.float32) / 255.0
    teacher = model.teacher_encoder(pixels, training=False).numpy()
    student = model.encoder(pixels, training=False).numpy()
    assert model.export_encoder is model.teacher_encoder
    np.testing.assert_allclose(model.predict(images, verbose=0), teacher, rtol=1e-5, atol=1e-6)
    assert not np.allclose(teacher, student, atol=1e-3)


def test_only_the_student_uses_stochastic_depth():
    encoder = ViTTiny((8, 8, 1), patch_size=4, dim=16, depth=2, num_heads=2, drop_path_rate=0.5)
    model = make_model(encoder)
    rates = [layer.rate for layer in model.encoder.layers if isinstance(layer, DropPath)]
    teacher = [layer.rate for layer in model.teacher_encoder.layers if isinstance(layer, DropPath)]
    assert rates == [0.5, 0.5] and teacher == [0.0, 0.0]
    images = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    np.testing.assert_array_equal(
        model.teacher_encoder(images, training=True), model.teacher_encoder(images, training=True)
    )


def test_default_augmenter_is_dino_multicrop():
    encoder = ViTTiny((28, 28, 1), patch_size=4, dim=16, depth=1, num_heads=2)
    model = DINO(encoder, **HEAD)
    shapes = model.augmenter.compute_output_shape((None, 28, 28, 1))
    assert shapes == ((None, 28, 28, 1),) * 2 + ((None, 12, 12, 1),) * 8
    config = model.get_config()
    assert (config["momentum"], config["student_temp"], config["center_momentum"]) == (
        0.996,
        0.1,
        0.9,
    )
    assert (config["warmup_teacher_temp"], config["teacher_temp"]) == (0.04, 0.07)
    paper = DINO(encoder, augmenter=model.augmenter)
    assert (paper.out_dim, paper.hidden_dim, paper.bottleneck_dim, paper.head_layers) == (
        65536,
        2048,
        256,
        3,
    )


def test_trains_from_the_input_pipeline_and_learns():
    # DINO's loss is not monotone at first: the near one-hot teacher of a random network is
    # flattened by the centre within a few steps (the loss rises), then the student learns to
    # predict the teacher across crops: the loss and the student-teacher KL
    # (loss - teacher entropy) fall, and the teacher collapses neither to one prototype
    # (entropy 0) nor to the uniform distribution (entropy log K).
    keras.utils.set_random_seed(0)
    augmenter = multicrop(
        (8, 8, 1), local_size=4, num_local=2, global_scale=(0.5, 1.0), local_scale=(0.2, 0.5)
    )
    model = DINO(
        tiny_vit(),
        augmenter=augmenter,
        out_dim=64,
        hidden_dim=32,
        bottleneck_dim=16,
        teacher_temp=0.04,
        freeze_last_layer_epochs=0,  # an 8-epoch toy run: every step trains the prototypes
        final_momentum=None,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    grids = np.random.default_rng(0).random((64, 4, 4, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    dataset = make_ssl_dataset(images, batch_size=16, augmenter=augmenter, seed=1, repeat=True)
    history = model.fit(dataset, epochs=8, steps_per_epoch=8, verbose=0).history
    loss, entropy = np.array(history["loss"]), np.array(history["teacher_entropy"])
    kl = loss - entropy
    peak = int(np.argmax(loss))
    assert loss[-1] < loss[peak] - 0.5 and kl[-1] < 0.5 * kl[peak]
    assert 1.0 < entropy[-1] < np.log(64) - 0.2


def test_trains_from_raw_uint8_images_with_in_step_multicrop():
    keras.utils.set_random_seed(0)
    model = make_resnet_model()
    model.compile(optimizer="adam")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
    history = model.fit(images, rng.integers(0, 3, 16), batch_size=8, epochs=1, verbose=0).history
    assert set(history) == {"loss", "teacher_entropy", "probe_loss", "probe_accuracy"}
    assert all(np.isfinite(v[0]) for v in history.values())


def _shipped_config():
    return testing.load_config(CONFIG)


def test_shipped_config_schedules_are_in_epochs_and_follow_the_run():
    config = _shipped_config()
    kwargs = config.method_kwargs
    assert "momentum_epochs" not in kwargs and kwargs.final_momentum == 1.0  # the whole run
    assert kwargs.freeze_last_layer_epochs == 1  # DINO's first epoch
    assert kwargs.warmup_teacher_temp_epochs == pytest.approx(6 * 0.3)  # 30% as 30 of 100
    config.batch_size, config.epochs = 256, 10
    assert kwargs.warmup_teacher_temp_epochs == pytest.approx(3.0)


def test_shipped_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.shrink_config(_shipped_config())
    model = experiment.build_model(config, (28, 28, 1))
    assert isinstance(model, DINO) and model.encoder.name == "vit"
    assert model.augmenter.num_views == 2 + 6 and model.out_dim == config.method_kwargs.out_dim
    assert model.freeze_last_layer_epochs == 1
    # The teacher-temperature warm-up is 30% of the (shrunk, 1-epoch) run.
    assert model.warmup_teacher_temp_epochs == pytest.approx(0.3)


# ------------------------------------------------------------------------------- errors
def test_views_must_be_two_global_crops_of_the_encoder_size():
    model = make_model()
    with pytest.raises(ValueError, match="2 global views"):
        model.compute_ssl_loss((tf.zeros((2, 8, 8, 1)),), training=False)
    model.compile(optimizer="sgd")
    bad_global = {"views": (np.zeros((8, 8, 8, 1)), np.zeros((8, 4, 4, 1)))}
    with pytest.raises(ValueError, match=r"views\[1\]` height does not match"):
        model.fit(testing.make_dataset(bad_global, GLOBAL_BATCH), epochs=1, verbose=0)
    bad_channels = {"views": (np.zeros((8, 8, 8, 1)),) * 2 + (np.zeros((8, 4, 4, 3)),)}
    with pytest.raises(ValueError, match=r"views\[2\]` channels does not match"):
        model.fit(testing.make_dataset(bad_channels, GLOBAL_BATCH), epochs=1, verbose=0)


def test_augmenter_views_are_checked_against_the_encoder():
    one_view = MultiViewAugmenter([RandomResizedCrop(8, 8)], num_views=1)
    with pytest.raises(ValueError, match="augmenter with 2 global views"):
        make_model(augmenter=one_view)
    with pytest.raises(ValueError, match=r"view 0 has shape \(6, 6, 1\)"):
        make_model(augmenter=multicrop((8, 8, 1), global_size=6, local_size=4))
    with pytest.raises(
        ValueError,
        match=r"(?s)cannot take \(6, 6, 1\) images.*multiples of the patch size 4.*local_size=",
    ):
        make_model(augmenter=multicrop((8, 8, 1), local_size=6))
    fixed = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(4)], name="flat"
    )
    with pytest.raises(ValueError, match="encoder 'flat' cannot take"):
        make_model(fixed)
    # Resizing local crops to the encoder input works with any encoder.
    make_model(fixed, augmenter=multicrop((8, 8, 1), local_size=8, num_local=2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"student_temp": 0}, "student_temp"),
        ({"teacher_temp": -0.1}, "teacher_temp"),
        ({"warmup_teacher_temp": "x"}, "warmup_teacher_temp"),
        ({"warmup_teacher_temp_epochs": -1}, "warmup_teacher_temp_epochs"),
        ({"warmup_teacher_temp_steps": 30}, "replaced by `warmup_teacher_temp_epochs`"),
        ({"freeze_last_layer_steps": 100}, "replaced by `freeze_last_layer_epochs`"),
        ({"momentum_steps": 100}, "replaced by `momentum_epochs`"),
        ({"center_momentum": 1.5}, "center_momentum"),
        ({"freeze_last_layer_epochs": "one"}, "freeze_last_layer_epochs"),
        ({"head_layers": 0}, "head_layers"),
        ({"out_dim": 0}, "out_dim"),
        ({"momentum": 2.0}, "momentum"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)
