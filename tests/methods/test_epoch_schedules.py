import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones
from keras_ssl.methods import SimCLR
from keras_ssl.methods.epoch_schedules import (
    in_first_epochs,
    linear_warmup,
    optimizer_step,
    reject_step_arguments,
)


@pytest.fixture(scope="module")
def planned():
    """A method whose plan is 10 optimizer steps per epoch, 5 epochs."""
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,))
    model = SimCLR(encoder, projection_dim=4)
    model.plan_schedules(10, 5)
    return model


def test_optimizer_step_is_0_before_compile_and_the_iterations_after(planned):
    assert optimizer_step(planned) == 0
    model = SimCLR(backbones.SmallResNet((8, 8, 1), widths=(4,)), projection_dim=4)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.optimizer.iterations.assign(7)
    assert int(optimizer_step(model)) == 7


def test_in_first_epochs_covers_exactly_their_steps(planned):
    assert in_first_epochs(planned, 0, 0) is None  # never
    assert bool(in_first_epochs(planned, 9, 1)) and not bool(in_first_epochs(planned, 10, 1))
    assert bool(in_first_epochs(planned, tf.constant(14, tf.int64), 1.5))
    assert not bool(in_first_epochs(planned, 15, 1.5))


def test_linear_warmup_rises_linearly_then_stays(planned):
    values = [float(linear_warmup(planned, step, 0.04, 0.07, 3)) for step in (0, 15, 30, 45)]
    np.testing.assert_allclose(values, [0.04, 0.055, 0.07, 0.07], rtol=1e-6)
    assert float(linear_warmup(planned, 0, 0.04, 0.07, 0)) == pytest.approx(0.07)
    assert float(linear_warmup(planned, 0, 0.07, 0.07, 3)) == pytest.approx(0.07)


def test_reject_step_arguments_names_the_replacement():
    reject_step_arguments({"other": 1}, "freeze_last_layer_epochs")
    with pytest.raises(
        ValueError,
        match=r"`freeze_last_layer_steps` was replaced by `freeze_last_layer_epochs` .*"
        r"received freeze_last_layer_steps=100\. Fix: pass freeze_last_layer_epochs\.",
    ):
        reject_step_arguments(
            {"freeze_last_layer_steps": 100}, "a_epochs", "freeze_last_layer_epochs"
        )
