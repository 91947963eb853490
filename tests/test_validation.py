import math
import re

import numpy as np
import pytest

from keras_ssl.validation import check_in_range, check_int, check_int_tuple, check_positive_number


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


def test_check_int_with_a_maximum_names_the_interval():
    assert check_int(np.int64(9), "tiles", 2, maximum=9) == 9
    assert check_int(2, "tiles", 2, maximum=9) == 2
    for value in (1, 10, 9.0):
        with pytest.raises(
            ValueError,
            match=rf"`tiles` must be an integer in \[2, 9\]; received {value!r}\. Fix: use 9\.",
        ):
            check_int(value, "tiles", 2, "use 9.", maximum=9)
    with pytest.raises(ValueError, match=r"Fix: pass an integer in \[0, 3\]\."):
        check_int(4, "k", 0, maximum=3)


def test_check_int_tuple_returns_ints_of_an_accepted_length():
    assert check_int_tuple([28, np.int64(28), 1], "shape", "(h, w, c)", (3,)) == (28, 28, 1)
    assert check_int_tuple((8, 8), "shape", "(h, w) or (h, w, c)", (2, 3)) == (8, 8)
    for value in [(8,), (8, 8, 1, 1), (8, 0), (8, 8.0), (8, True), "88", 8, None]:
        with pytest.raises(
            ValueError,
            match=rf"`shape` must be \(h, w\) or \(h, w, c\) with positive ints; received "
            rf"{re.escape(repr(value))}\. Fix: pass e\.g\. \(8, 8\)\.",
        ):
            check_int_tuple(value, "shape", "(h, w) or (h, w, c)", (2, 3), "pass e.g. (8, 8).")
    with pytest.raises(ValueError, match=r"Fix: pass \(h, w\) with positive ints\."):
        check_int_tuple((0, 1), "size", "(h, w)", (2,))


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
