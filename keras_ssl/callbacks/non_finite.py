"""Stop at the first non-finite loss, leaving checkpoints and exports untouched."""

import math

import keras


class NonFiniteLossError(RuntimeError):
    """Raised by :class:`StopOnNonFinite`; names the step and the loss term."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Raises :class:`NonFiniteLossError` after the first step whose logged values are NaN/Inf.

    It raises (rather than setting ``stop_training``) so that ``fit`` ends at once: no
    ``on_epoch_end`` runs, so ``BackupAndRestore`` and ``ModelCheckpoint`` never write the
    broken weights over the last good checkpoint, and nothing after ``fit`` exports them.
    The message names the optimizer step, the epoch and batch, and every non-finite term.
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = {
            key: value
            for key, value in (logs or {}).items()
            if isinstance(value, (int, float)) and not math.isfinite(value)
        }
        if not bad:
            return
        step = int(self.model.optimizer.iterations.numpy())
        terms = ", ".join(f"{key}={value}" for key, value in sorted(bad.items()))
        raise NonFiniteLossError(
            f"Non-finite training values at optimizer step {step} (epoch {self.epoch + 1}, "
            f"batch {batch + 1}): {terms}. Training stopped; the last good checkpoint and any "
            "earlier export are left as they were. Fix: lower the learning rate, check the "
            "inputs for NaNs, or use float32 / loss scaling for mixed precision."
        )
