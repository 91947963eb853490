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
