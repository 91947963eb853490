"""Argument checks shared by the library: each raises a ``ValueError`` that names what it
received, what it expected and how to fix it."""

import numbers

import numpy as np


def check_int(value, name, minimum=1, fix=None):
    """Returns ``value`` as an ``int`` if it is an integer ``>= minimum`` (``bool`` excluded).

    Args:
        value: the argument.
        name: its name, as the user passes it.
        minimum: the smallest valid value.
        fix: the hint after "Fix:" (default: pass an integer >= ``minimum``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; received {value!r}. "
            f"Fix: {fix or f'pass an integer >= {minimum}.'}"
        )
    return int(value)


def check_positive_number(value, name, fix=None):
    """Returns ``value`` as a ``float`` if it is a real number ``> 0`` (``bool`` excluded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(
            f"`{name}` must be a positive number; received {value!r}. "
            f"Fix: {fix or 'pass a number > 0.'}"
        )
    return float(value)


def check_in_range(value, name, low=None, high=None, fix=None, low_open=False, high_open=False):
    """Returns ``value`` as a ``float`` if it is a real number in the interval from ``low`` to
    ``high`` (``bool`` excluded; ``None`` leaves that side unbounded; ``*_open`` excludes the
    bound).

    The error names the interval as ``[low, high]``, ``(low, high]``, ``>= low`` or ``<= high``.
    """
    valid = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if valid and low is not None:
        valid = value > low if low_open else value >= low
    if valid and high is not None:
        valid = value < high if high_open else value <= high
    if not valid:
        if low is not None and high is not None:
            interval = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            interval = f"{'>' if low_open else '>='} {low}"
        else:
            interval = f"{'<' if high_open else '<='} {high}"
        raise ValueError(
            f"`{name}` must be a number {interval}; received {value!r}. "
            f"Fix: {fix or f'pass a number {interval}.'}"
        )
    return float(value)
