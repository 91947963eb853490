"""Schedules in epochs read inside the step (see ``keras_ssl.methods.base``): the optimizer step
they read, windows over the first epochs, linear warm-ups, and the refusal of the arguments in
steps that arguments in epochs replaced.

Every schedule converts epochs with :meth:`SSLMethod.epochs_to_steps`, so it follows the run's
plan (``fit``'s real steps per epoch) and resumes with ``optimizer.iterations``.
"""

import tensorflow as tf


def optimizer_step(method):
    """``method.optimizer.iterations``, the optimizer steps taken so far; 0 before ``compile``."""
    optimizer = getattr(method, "optimizer", None)  # None before compile()
    return optimizer.iterations if optimizer is not None else 0


def in_first_epochs(method, step, epochs):
    """Whether optimizer step ``step`` lies in the first ``epochs`` epochs of ``method``'s plan.

    Returns:
        A bool scalar tensor, or ``None`` when ``epochs`` is 0 (never).
    """
    if not epochs:
        return None
    return tf.cast(step, tf.float32) < method.epochs_to_steps(epochs)


def linear_warmup(method, step, start, end, epochs):
    """``start`` rising linearly to ``end`` over the first ``epochs`` epochs of ``method``'s
    plan, then ``end`` (a float32 scalar tensor; ``end`` throughout when ``epochs`` is 0 or
    ``start == end``)."""
    if not epochs or start == end:
        return tf.constant(end, tf.float32)
    warmup = tf.maximum(method.epochs_to_steps(epochs), 1.0)
    progress = tf.minimum(tf.cast(step, tf.float32) / warmup, 1.0)
    return start + (end - start) * progress


def reject_step_arguments(kwargs, *names):
    """Raises a ``ValueError`` when ``kwargs`` holds the argument in steps that one in epochs
    replaced (``freeze_last_layer_steps`` for ``freeze_last_layer_epochs``).

    Args:
        kwargs: the keyword arguments a method received.
        *names: the arguments in epochs, each named ``<schedule>_epochs``.
    """
    for new in names:
        old = new.removesuffix("_epochs") + "_steps"
        if old in kwargs:
            raise ValueError(
                f"`{old}` was replaced by `{new}` (in epochs, converted with fit's real "
                f"steps per epoch); received {old}={kwargs[old]!r}. Fix: pass {new}."
            )
