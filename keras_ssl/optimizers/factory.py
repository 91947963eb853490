"""The optimizer a config describes: learning-rate scaling with the batch size, warm-up + cosine
schedule, and weight decay that skips biases and normalisation parameters."""

import math

import keras

from keras_ssl.optimizers.lars import LARS
from keras_ssl.optimizers.schedules import WarmupCosine


def scaled_learning_rate(optimizer_config, batch_size):
    """The peak learning rate for ``batch_size`` under the configured scaling rule.

    ``linear``: ``lr * batch / reference`` (Goyal et al. 2017; SimCLR's 0.3 x B/256);
    ``sqrt``: ``lr * sqrt(batch / reference)`` (SimCLR's square-root rule for small batches);
    ``none``: ``lr``.
    """
    rule, lr = optimizer_config.scaling, optimizer_config.learning_rate
    ratio = batch_size / optimizer_config.reference_batch_size
    if rule == "linear":
        return lr * ratio
    if rule == "sqrt":
        return lr * math.sqrt(ratio)
    if rule != "none":
        raise ValueError(
            f"Unknown learning-rate scaling {rule!r}; expected 'none', 'linear' or 'sqrt'. "
            "Fix: set config.optimizer.scaling."
        )
    return lr


#: Variables (by name) that get no weight decay: biases and normalisation scales and shifts, as
#: in SimCLR, BYOL and LARS practice (LARS itself leaves out every rank-1 variable).
NO_WEIGHT_DECAY = ("bias", "gamma", "beta")


def build_optimizer(optimizer_config, steps_per_epoch, epochs, batch_size=None):
    """A Keras optimizer with the configured warm-up + cosine (or constant) learning rate.

    Weight decay (``adamw``, ``sgd``, ``lamb``, ``lion``, ``lars``) skips biases and
    normalisation parameters (:data:`NO_WEIGHT_DECAY`).
    """
    total_steps = max(1, steps_per_epoch * epochs)
    learning_rate = scaled_learning_rate(
        optimizer_config, batch_size or optimizer_config.reference_batch_size
    )
    if optimizer_config.schedule == "cosine":
        warmup = min(total_steps, int(optimizer_config.warmup_epochs * steps_per_epoch))
        learning_rate = WarmupCosine(learning_rate, total_steps, warmup_steps=warmup)
    elif optimizer_config.schedule != "constant":
        raise ValueError(
            f"Unknown learning-rate schedule {optimizer_config.schedule!r}; expected 'cosine' or "
            "'constant'. Fix: set config.optimizer.schedule."
        )
    name = optimizer_config.name.lower()
    if name == "lars":
        return LARS(
            learning_rate=learning_rate,
            momentum=optimizer_config.momentum,
            weight_decay=optimizer_config.weight_decay,
        )
    kwargs = {"learning_rate": learning_rate}
    if name in ("adamw", "lamb", "lion", "sgd"):
        kwargs["weight_decay"] = optimizer_config.weight_decay or None
    if name == "sgd":
        kwargs["momentum"] = optimizer_config.momentum
    try:
        optimizer = keras.optimizers.get({"class_name": name, "config": kwargs})
    except ValueError as error:
        raise ValueError(
            f"Unknown optimizer {optimizer_config.name!r} ({error}). Fix: set "
            "config.optimizer.name to 'lars' or a Keras optimizer such as 'adamw', 'sgd', "
            "'lamb'."
        ) from error
    if optimizer.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=NO_WEIGHT_DECAY)
    return optimizer
