"""Argument checks shared by the library: each raises a ``ValueError`` that names what it
received, what it expected and how to fix it."""

import numbers

import numpy as np


def _is_int(value):
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def check_int(value, name, minimum=1, fix=None, maximum=None):
    """Returns ``value`` as an ``int`` if it is an integer ``>= minimum`` (``bool`` excluded)
    and, when ``maximum`` is given, ``<= maximum``.

    The error names the valid values as ``>= minimum`` or ``in [minimum, maximum]``.

    Args:
        value: the argument.
        name: its name, as the user passes it.
        minimum: the smallest valid value.
        fix: the hint after "Fix:" (default: pass an integer in the valid range).
        maximum: the largest valid value, or ``None`` for no upper bound.
    """
    valid = _is_int(value) and value >= minimum and (maximum is None or value <= maximum)
    if not valid:
        interval = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(
            f"`{name}` must be an integer {interval}; received {value!r}. "
            f"Fix: {fix or f'pass an integer {interval}.'}"
        )
    return int(value)


def check_int_tuple(value, name, form, lengths, fix=None):
    """Returns ``value`` as a tuple of ``int`` if it is a tuple or list of one of the
    ``lengths`` whose entries are integers ``>= 1`` (``bool`` excluded): an image shape or size.

    Args:
        value: the argument.
        name: its name, as the user passes it.
        form: the expected layout as the message shows it, e.g. ``"(height, width, channels)"``.
        lengths: the valid numbers of entries, e.g. ``(3,)`` or ``(2, 3)``.
        fix: the hint after "Fix:" (default: pass ``form`` with positive ints).
    """
    valid = isinstance(value, (tuple, list)) and len(value) in lengths
    if not (valid and all(_is_int(entry) and entry >= 1 for entry in value)):
        raise ValueError(
            f"`{name}` must be {form} with positive ints; received {value!r}. "
            f"Fix: {fix or f'pass {form} with positive ints.'}"
        )
    return tuple(int(entry) for entry in value)


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
