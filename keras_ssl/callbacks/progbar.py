"""A progress bar that leaves out probe metrics on the epochs where the probe did not run."""

import math

import keras

from keras_ssl.callbacks.base import ProbeCallback


class ProbeProgbar(keras.callbacks.ProgbarLogger):
    """``keras.callbacks.ProgbarLogger`` that hides the ``NaN`` placeholders of probes.

    Probes (:class:`~keras_ssl.callbacks.KNNProbe`, :class:`~keras_ssl.callbacks.LinearProbe`,
    ...) write ``NaN`` into the epoch logs on the epochs where they do not run, so that
    ``History``, ``CSVLogger`` and ``TensorBoard`` stay aligned with the epochs. On the
    console such a ``NaN`` reads like a diverged metric; this bar shows a probe's key only on
    the epochs where it has a value. Every other value, a ``NaN`` loss included, is shown.

    Methods' ``fit`` adds one (with the keys of the probes passed to it) when no
    ``ProgbarLogger`` is among its callbacks.

    Args:
        probe_keys: the log keys to hide while they are ``NaN``.
    """

    def __init__(self, probe_keys=()):
        super().__init__()
        self.probe_keys = frozenset(probe_keys)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, self.shown(logs))

    def shown(self, logs):
        """Returns ``logs`` without the probe keys whose value is ``NaN``."""
        return {
            key: value
            for key, value in (logs or {}).items()
            if key not in self.probe_keys or not _is_nan(value)
        }


def probe_keys(callbacks):
    """The log keys of the :class:`ProbeCallback` instances among ``callbacks``."""
    return [key for c in callbacks if isinstance(c, ProbeCallback) for key in c.log_keys]


def _is_nan(value):
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False
