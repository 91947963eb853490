import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, testing
from keras_ssl.layers import MLPHead
from keras_ssl.methods.momentum import MomentumMethod, copy_network, cosine_momentum, ema_update

GLOBAL_BATCH = 8


@keras.saving.register_keras_serializable(package="keras_ssl_tests")
class MeanTeacher(MomentumMethod):
    """The smallest momentum method: predict the teacher's projection of the other view."""

    def __init__(self, encoder, **kwargs):
        super().__init__(encoder, **kwargs)
        self.projector = MLPHead((8,), 4, synchronized=True, name="projector")
        self.build()

    def build_heads(self, feature_shape):
        self.projector.build(feature_shape)
        self.teacher_encoder = self.make_teacher(self.encoder)
        self.teacher_projector = self.make_teacher(self.projector)

    def compute_ssl_loss(self, views, training):
        features = self.encoder(views[0], training=training)
        online = self.projector(features, training=training)
        target = self.teacher_projector(self.teacher_encoder(views[1], training=training))
        loss = tf.reduce_mean(tf.square(online - tf.stop_gradient(target)))
        return {"loss": loss}, features


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,), synchronized_bn=True)
    options = {"momentum": 0.9, "momentum_epochs": 4}  # the battery fits 1 step per epoch
    return MeanTeacher(encoder, **{**options, **kwargs})


def make_data(steps=2):
    rng = np.random.default_rng(0)
    views = tuple(rng.random((steps * GLOBAL_BATCH, 8, 8, 1), dtype=np.float32) for _ in range(2))
    return {"views": views}


def teacher_state(model):
    return {
        f"teacher_{i}": keras.ops.convert_to_numpy(w)
        for i, w in enumerate(model.teacher_encoder.weights + model.teacher_projector.weights)
    }


def test_copy_network_copies_structure_and_values_not_variables():
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,))
    copy = copy_network(encoder)
    assert [w.shape for w in copy.weights] == [w.shape for w in encoder.weights]
    for a, b in zip(copy.weights, encoder.weights):
        assert a is not b
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    head = MLPHead((5,), 3)
    with pytest.raises(ValueError, match="not built"):
        copy_network(head)


def test_ema_update_is_exact_and_skips_non_trainable_weights():
    online, teacher = keras.layers.BatchNormalization(), keras.layers.BatchNormalization()
    for layer, value in ((online, 1.0), (teacher, 3.0)):
        layer.build((None, 2))
        layer.set_weights([np.full((2,), value + i, np.float32) for i in range(4)])
    ema_update(online, teacher, 0.75)
    gamma, beta, mean, variance = teacher.get_weights()
    np.testing.assert_array_equal(gamma, 0.75 * 3.0 + 0.25 * 1.0)
    np.testing.assert_array_equal(beta, 0.75 * 4.0 + 0.25 * 2.0)
    np.testing.assert_array_equal(mean, 5.0)  # moving statistics are the teacher's own
    np.testing.assert_array_equal(variance, 6.0)


def test_cosine_momentum_schedule():
    values = [float(cosine_momentum(step, 0.99, 1.0, 10)) for step in (0, 5, 10, 20)]
    np.testing.assert_allclose(values, [0.99, 0.995, 1.0, 1.0], atol=1e-7)
    quarter = 1.0 - 0.01 * (math.cos(math.pi / 4) + 1) / 2
    assert float(cosine_momentum(2.5, 0.99, 1.0, 10)) == pytest.approx(quarter)
    assert float(cosine_momentum(7, 0.9, 1.0, None)) == pytest.approx(0.9)
    # The length may be a tensor (the run's plan, read inside the step).
    assert float(cosine_momentum(5, 0.99, 1.0, tf.constant(10.0))) == pytest.approx(0.995)


def test_teacher_is_frozen_for_the_optimizer_but_saved_as_weights():
    model = make_model()
    teacher_ids = {id(w) for w in model.teacher_encoder.weights + model.teacher_projector.weights}
    assert not teacher_ids & {id(w) for w in model.trainable_weights}
    assert teacher_ids <= {id(w) for w in model.weights}
    online = len(model.encoder.trainable_weights) + len(model.projector.trainable_weights)
    assert len(model.trainable_weights) == online


def test_one_step_teacher_equals_tau_t_plus_one_minus_tau_o():
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    # Start the teacher away from the online network so the EMA is visible.
    for weight in model.teacher_projector.weights:
        weight.assign(weight + 1.0)
    before = teacher_state(model)
    data = make_data(steps=1)
    model.fit(testing.make_dataset(data, GLOBAL_BATCH), epochs=1, verbose=0)
    tau = float(model.momentum_at(0))
    assert tau == pytest.approx(0.9)
    pairs = list(zip(model.encoder.weights, model.teacher_encoder.weights)) + list(
        zip(model.projector.weights, model.teacher_projector.weights)
    )
    for index, (online, teacher) in enumerate(pairs):
        if online.trainable:
            expected = tau * before[f"teacher_{index}"] + (1 - tau) * online.numpy()
            np.testing.assert_allclose(teacher.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_battery():
    data = make_data()
    testing.check_fit_updates(make_model, data, GLOBAL_BATCH)
    testing.check_replica_equivalence(make_model, data, GLOBAL_BATCH, state_fn=teacher_state)
    testing.check_xla_step(make_model, data, GLOBAL_BATCH)


def test_save_load_restores_teacher(tmp_path):
    testing.check_save_load(make_model, make_data(), GLOBAL_BATCH, tmp_path, state_fn=teacher_state)


def test_bad_momentum_arguments():
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,))
    with pytest.raises(ValueError, match="momentum"):
        MeanTeacher(encoder, momentum=1.5)
    with pytest.raises(ValueError, match="momentum_epochs"):
        MeanTeacher(encoder, momentum_epochs=0)
    with pytest.raises(ValueError, match="momentum_epochs"):
        MeanTeacher(encoder, momentum_epochs="all")
    with pytest.raises(ValueError, match=r"momentum_steps` was replaced by `momentum_epochs"):
        MeanTeacher(encoder, momentum_steps=100)


class RecordMomentum(keras.callbacks.Callback):
    """The momentum the next step would use, at the end of every epoch."""

    def on_train_begin(self, logs=None):
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(float(self.model.momentum_at(self.model.optimizer.iterations)))


@pytest.mark.parametrize("batches", [2, 5])
def test_epoch_schedule_ends_after_exactly_its_epochs_for_any_dataset_size(batches):
    # tau: 0.9 -> 1 over momentum_epochs=2 whatever the number of steps per epoch; the old
    # steps-based schedule ended after a fixed number of steps (2 epochs of one dataset only).
    keras.utils.set_random_seed(0)
    model = make_model(momentum_epochs=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    record = RecordMomentum()
    dataset = testing.make_dataset(make_data(steps=batches), GLOBAL_BATCH)
    model.fit(dataset, epochs=3, callbacks=[record], verbose=0)
    assert int(model.schedule_steps_per_epoch.numpy()) == batches
    assert int(model.schedule_total_steps.numpy()) == 3 * batches
    # After epoch 1 of 2 the cosine is half way (0.95); after epoch 2 it is at 1 and stays.
    np.testing.assert_allclose(record.values, [0.95, 1.0, 1.0], atol=1e-6)
    assert float(model.momentum_at(2 * batches - 1)) < 1.0  # the last step of epoch 2 is not


@pytest.mark.parametrize("batches", [2, 5])
def test_default_cosine_spans_the_whole_run_of_fit(batches):
    model = make_model(momentum_epochs=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    record = RecordMomentum()
    dataset = testing.make_dataset(make_data(steps=batches), GLOBAL_BATCH)
    model.fit(dataset, epochs=2, callbacks=[record], verbose=0)
    np.testing.assert_allclose(record.values, [0.95, 1.0], atol=1e-6)


def test_the_plan_is_state_that_a_checkpoint_restores(tmp_path):
    model = make_model(momentum_epochs=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(testing.make_dataset(make_data(steps=2), GLOBAL_BATCH), epochs=3, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert int(restored.schedule_steps_per_epoch.numpy()) == 2
    assert int(restored.schedule_total_steps.numpy()) == 6
    assert float(restored.momentum_at(3)) == pytest.approx(0.95)


def test_unknown_steps_per_epoch_raise_and_name_the_fix():
    model = make_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    endless = testing.make_dataset(make_data(steps=1), GLOBAL_BATCH).repeat()
    with pytest.raises(ValueError, match="pass steps_per_epoch to fit"):
        model.fit(endless, epochs=1, verbose=0)
    model.fit(endless, epochs=2, steps_per_epoch=3, verbose=0)
    assert int(model.schedule_total_steps.numpy()) == 6
    # A constant momentum has no schedule, so it needs no steps per epoch.
    assert not make_model(final_momentum=None).uses_epoch_schedules
    assert not make_model(final_momentum=0.9).uses_epoch_schedules


def test_custom_loops_plan_the_schedule_first():
    model = make_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    batch = {"views": tuple(v[:GLOBAL_BATCH] for v in make_data(steps=1)["views"])}
    with pytest.raises(ValueError, match=r"model.plan_schedules\(steps_per_epoch, epochs\)"):
        model.train_on_batch(batch)
    model.plan_schedules(steps_per_epoch=10, epochs=2)  # momentum_epochs=4 > the run: 40 steps
    model.train_on_batch(batch)
    assert float(model.momentum_at(20)) == pytest.approx(0.95)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.plan_schedules(0, 2)
