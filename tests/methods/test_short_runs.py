"""ShortRunWarning: methods whose defaults measured no gain over random init in short runs."""

import warnings

import keras
import numpy as np
import pytest

from keras_ssl import backbones, methods
from keras_ssl.methods import ShortRunWarning
from keras_ssl.methods.short_runs import SHORT_RUN_STEPS

#: The methods below the random-init encoder with the plain call (README, "Your own data").
MEASURED_SHORT = {
    "moco",
    "moco_v3",
    "nnclr",
    "byol",
    "simsiam",
    "barlow_twins",
    "vicreg",
    "swav",
    "dino",
}


def _byol():
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,))
    return methods.BYOL(encoder, projection_hidden_dim=8, projection_dim=4, prediction_hidden_dim=8)


def _short_run_warnings(model, steps_per_epoch, epochs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.plan_schedules(steps_per_epoch, epochs)
    return [w for w in caught if issubclass(w.category, ShortRunWarning)]


def test_the_measured_methods_and_only_those_warn():
    flagged = {name for name, cls in methods.REGISTRY.items() if cls.short_run_steps is not None}
    assert flagged == MEASURED_SHORT
    assert all(methods.REGISTRY[name].short_run_steps == SHORT_RUN_STEPS for name in flagged)
    assert methods.SSLMethod.short_run_steps is None


def test_warns_below_the_measured_length_and_not_from_it():
    model = _byol()
    (warning,) = _short_run_warnings(model, 15, 8)
    message = str(warning.message)
    assert message.startswith("BYOL is planned for 120 optimizer steps.")
    assert f"train for at least {SHORT_RUN_STEPS} steps" in message
    assert "SimCLR(encoder, temperature=0.2)" in message
    assert len(_short_run_warnings(model, SHORT_RUN_STEPS - 1, 1)) == 1
    assert _short_run_warnings(model, SHORT_RUN_STEPS, 1) == []
    assert _short_run_warnings(model, SHORT_RUN_STEPS // 2, 2) == []


def test_fit_warns_once_with_the_planned_steps():
    model = _byol()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = np.random.default_rng(0).integers(0, 255, (8, 8, 8, 1), dtype=np.uint8)
    with pytest.warns(ShortRunWarning, match="planned for 6 optimizer steps") as record:
        model.fit(images, epochs=3, batch_size=4, verbose=0)
    assert len([w for w in record if issubclass(w.category, ShortRunWarning)]) == 1


def test_simclr_does_not_warn():
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,))
    model = methods.SimCLR(encoder, projection_dim=4)
    assert _short_run_warnings(model, 1, 1) == []
