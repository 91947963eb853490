import math

import numpy as np
import pytest

from keras_ssl.validation import check_in_range, check_int, check_positive_number


def test_check_int_accepts_integers_at_or_above_the_minimum():
    assert check_int(3, "n") == 3
    assert check_int(np.int64(0), "n", minimum=0) == 0
    assert type(check_int(np.int32(5), "n")) is int


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "3", None])
def test_check_int_rejects_with_name_value_and_fix(value):
    with pytest.raises(
        ValueError,
        match=rf"`steps` must be an integer >= 1; received {value!r}\. "
        "Fix: use 10.",
    ):
        check_int(value, "steps", 1, "use 10.")


def test_check_positive_number():
    assert check_positive_number(2, "t") == 2.0
    for value in (0, -0.1, math.nan, True, "1"):
        with pytest.raises(ValueError, match="`t` must be a positive number; received .*Fix: pass"):
            check_positive_number(value, "t")


@pytest.mark.parametrize(
    ("kwargs", "good", "bad", "interval"),
    [
        ({"low": 0, "high": 1}, [0, 0.5, 1], [-0.01, 1.01, math.nan], r"in \[0, 1\]"),
        ({"low": 0, "high": 1, "low_open": True}, [0.5, 1], [0], r"in \(0, 1\]"),
        ({"low": 0, "high": 1, "high_open": True}, [0, 0.99], [1], r"in \[0, 1\)"),
        ({"low": 0}, [0, 1e9], [-1], ">= 0"),
        ({"low": 0, "low_open": True}, [1e-9], [0], "> 0"),
        ({"high": 1}, [-5, 1], [1.5], "<= 1"),
    ],
)
def test_check_in_range(kwargs, good, bad, interval):
    for value in good:
        assert check_in_range(value, "m", **kwargs) == float(value)
    for value in [*bad, True, "0.5", None]:
        with pytest.raises(ValueError, match=rf"`m` must be a number {interval}; received "):
            check_in_range(value, "m", fix="use 0.9.", **kwargs)
