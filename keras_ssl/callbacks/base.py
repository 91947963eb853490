"""``ProbeCallback``: measure the encoder at chosen epochs and write the results into the logs."""

import time

import keras
import numpy as np

from keras_ssl.validation import check_int


class ProbeCallback(keras.callbacks.Callback):
    """Base of the probes: runs :meth:`evaluate` at the end of the epochs it is due.

    It is due every ``every_n_epochs`` epochs (counted from 1), on the epochs listed in
    ``epochs_to_run``, on the last epoch of ``fit``, and on an epoch after which training stops
    early (``model.stop_training`` set before this callback runs, e.g. by a time limit), so the
    final encoder is always measured. The values of :meth:`log_values` go into the epoch logs,
    where the progress bar and ``fit``'s ``History`` (which Keras runs after user callbacks)
    see them; epochs where the probe is not due get ``NaN`` under the same keys, so every
    history list stays aligned with ``history.epoch``. The progress bar of a method's ``fit``
    (:class:`~keras_ssl.callbacks.ProbeProgbar`) leaves those placeholders out.

    Subclasses implement :meth:`evaluate` and :meth:`log_values` and set :attr:`log_keys`.

    Attributes:
        results: dict ``epoch (from 1) -> evaluate()`` result of the epochs where it ran.
    """

    #: Keys this callback writes into the epoch logs.
    log_keys = ()

    def __init__(self, every_n_epochs=None, epochs_to_run=None, verbose=0):
        super().__init__()
        check_every_n_epochs(every_n_epochs, allow_none=True)
        self.every_n_epochs = every_n_epochs
        self.epochs_to_run = epochs_to_run
        self._epochs_to_run = _check_epochs_to_run(epochs_to_run)
        self.verbose = verbose
        self.results = {}

    def evaluate(self):
        """Measures the current encoder; returns the result stored in :attr:`results`."""
        raise NotImplementedError

    def log_values(self, result):
        """Maps an :meth:`evaluate` result to ``{log key: float}``."""
        raise NotImplementedError

    def after_evaluate(self, epoch, result):
        """Hook run after a measurement (e.g. to warn); ``epoch`` counts from 1."""

    @property
    def encoder(self):
        return model_encoder(self.model, type(self).__name__)

    def on_train_begin(self, logs=None):
        model_encoder(self.model, type(self).__name__)

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        if not self._due(epoch):
            logs.update({key: float("nan") for key in self.log_keys})
            return
        start = time.perf_counter()
        result = self.evaluate()
        self.results[epoch + 1] = result
        values = self.log_values(result)
        logs.update(values)
        if self.verbose:
            shown = ", ".join(f"{key} = {value:.4f}" for key, value in values.items())
            print(f"Epoch {epoch + 1}: {shown} ({time.perf_counter() - start:.1f} s)")
        self.after_evaluate(epoch + 1, result)

    def _due(self, epoch):
        number = epoch + 1
        if getattr(self.model, "stop_training", False):
            return True
        if self.every_n_epochs is not None and number % self.every_n_epochs == 0:
            return True
        if number in self._epochs_to_run:
            return True
        return (self.params or {}).get("epochs") == number


def model_encoder(model, callback_name):
    """Returns ``model.export_encoder`` (or ``model.encoder``), or raises a ``ValueError``."""
    encoder = getattr(model, "export_encoder", getattr(model, "encoder", None))
    if encoder is None or not callable(encoder):
        raise ValueError(
            f"{callback_name} needs a model with an `encoder` attribute (a keras.Model mapping "
            f"images to [batch, D] embeddings); received {type(model).__name__} with encoder="
            f"{type(encoder).__name__ if encoder is not None else None}. Fix: use it with a "
            "keras_ssl method, or set `model.encoder = your_encoder` before fit."
        )
    return encoder


def check_every_n_epochs(every_n_epochs, allow_none=False):
    """Raises a ``ValueError`` unless ``every_n_epochs`` is an int >= 1 (or allowed ``None``)."""
    if every_n_epochs is None and allow_none:
        return
    fix = "pass 1 to run after every epoch, N to run every N epochs."
    check_int(every_n_epochs, "every_n_epochs", fix=fix)


def _check_epochs_to_run(epochs_to_run):
    if epochs_to_run is None:
        return frozenset()
    try:
        numbers = list(epochs_to_run)
    except TypeError:
        numbers = None
    if numbers is None or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in numbers
    ):
        raise ValueError(
            f"`epochs_to_run` must be a list of epoch numbers >= 1 (counted from 1, as the "
            f"progress bar shows them); received {epochs_to_run!r}. Fix: pass e.g. [10, 50, 100]."
        )
    return frozenset(int(n) for n in numbers)
