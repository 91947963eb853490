import math

import keras
import numpy as np
import pytest

from keras_ssl.optimizers import WarmupCosine


def test_warmup_then_cosine_values():
    schedule = WarmupCosine(peak=1.0, total_steps=110, warmup_steps=10, final=0.1)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    expected = [0.0, 0.5, 1.0, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)), 0.1, 0.1]
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-7)


def test_serialises_inside_an_optimizer():
    optimizer = keras.optimizers.AdamW(learning_rate=WarmupCosine(0.5, 100, 5))
    rebuilt = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert float(rebuilt.learning_rate) == pytest.approx(float(optimizer.learning_rate))
    assert rebuilt._learning_rate.get_config() == optimizer._learning_rate.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(peak=1.0, total_steps=10, warmup_steps=11)
