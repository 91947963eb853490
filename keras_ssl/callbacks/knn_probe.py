"""KNNProbe: weighted kNN accuracy of the encoder's embeddings, logged during ``fit``."""

import time

import keras
import numpy as np

from keras_ssl.evaluation.features import (
    check_labelled_data,
    check_positive_int,
    extract_labelled_features,
)
from keras_ssl.evaluation.knn import check_knn_arguments, knn_accuracy


class KNNProbe(keras.callbacks.Callback):
    """Logs the weighted kNN accuracy (Wu et al., 2018) of ``model.encoder`` during training.

    At the end of every ``every_n_epochs``-th epoch (epochs counted from 1), of the last
    epoch of ``fit`` and of an epoch after which training stops early (``stop_training`` set
    before this callback runs, e.g. by a time limit), the callback embeds ``train_data`` and
    ``test_data`` with ``self.model.encoder`` (``training=False``, L2-normalised), classifies
    the test embeddings by a ``k``-nearest-neighbour vote
    (:func:`keras_ssl.evaluation.knn_predict`) and writes the accuracy into the epoch logs
    under ``name``. The progress bar and the ``History`` returned by ``fit`` (which Keras
    appends after user callbacks) then show it.

    On epochs where the probe does not run it writes ``NaN`` under ``name``, so that
    ``history.history[name]`` has one entry per epoch, aligned with ``history.epoch``
    (e.g. ``[nan, 0.61, nan, 0.67]`` for ``every_n_epochs=2`` over 4 epochs); drop the NaNs
    with ``np.isfinite``. ``EarlyStopping``/``ModelCheckpoint`` monitoring ``name`` treat a
    NaN epoch as "no improvement". Callbacks that read the logs (``CSVLogger``,
    ``TensorBoard``, ``EarlyStopping``) must come after this one in the ``callbacks`` list.

    Args:
        train_data: labelled reference set, ``(images, labels)`` arrays or a ``tf.data.Dataset``
            of ``(image, label)`` pairs (batched or not); images ``uint8`` in ``[0, 255]`` or
            float in ``[0, 1]``.
        test_data: labelled queries, same forms.
        k: number of neighbours.
        temperature: softness of the vote weights ``exp(similarity / temperature)``.
        every_n_epochs: run every this many epochs (the last epoch always runs).
        batch_size: images per encoder call.
        num_classes: number of classes; ``None`` infers it from the labels.
        name: the logs key.
        verbose: 1 prints the accuracy and the probe's wall time when it runs.

    Attributes:
        results: dict ``epoch (from 1) -> accuracy`` of the epochs where the probe ran.

    References:
        Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
        CVPR 2018, https://arxiv.org/abs/1805.01978
    """

    def __init__(
        self,
        train_data,
        test_data,
        k=20,
        temperature=0.07,
        every_n_epochs=1,
        batch_size=512,
        num_classes=None,
        name="knn_accuracy",
        verbose=0,
    ):
        super().__init__()
        self.train_data = check_labelled_data(train_data, "train_data")
        self.test_data = check_labelled_data(test_data, "test_data")
        num_train = None if _is_dataset(self.train_data) else len(self.train_data[1])
        check_knn_arguments(k, temperature, num_train)
        check_every_n_epochs(every_n_epochs)
        check_positive_int(batch_size, "batch_size")
        if num_classes is not None:
            check_positive_int(num_classes, "num_classes")
        self.k = k
        self.temperature = temperature
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.num_classes = num_classes
        self.name = name
        self.verbose = verbose
        self.results = {}

    def on_train_begin(self, logs=None):
        model_encoder(self.model, type(self).__name__)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            logs = {}
        if not should_run(epoch, self.every_n_epochs, self.params, model=self.model):
            logs[self.name] = float("nan")
            return
        start = time.perf_counter()
        accuracy = self.evaluate()
        self.results[epoch + 1] = accuracy
        logs[self.name] = accuracy
        if self.verbose:
            print(
                f"Epoch {epoch + 1}: {self.name} = {accuracy:.4f} "
                f"(k={self.k}, {time.perf_counter() - start:.1f} s)"
            )

    def evaluate(self):
        """Runs the probe on the current encoder and returns the kNN accuracy (a float)."""
        encoder = model_encoder(self.model, type(self).__name__)
        train_features, train_labels = extract_labelled_features(
            encoder, self.train_data, self.batch_size
        )
        test_features, test_labels = extract_labelled_features(
            encoder, self.test_data, self.batch_size
        )
        return knn_accuracy(
            train_features,
            train_labels,
            test_features,
            test_labels,
            num_classes=self.num_classes,
            k=self.k,
            temperature=self.temperature,
        )


def model_encoder(model, callback_name):
    """Returns ``model.encoder``, or raises a ``ValueError`` explaining what a probe needs."""
    encoder = getattr(model, "encoder", None)
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
    if (
        isinstance(every_n_epochs, bool)
        or not isinstance(every_n_epochs, (int, np.integer))
        or every_n_epochs < 1
    ):
        raise ValueError(
            f"`every_n_epochs` must be an integer >= 1; received {every_n_epochs!r}. "
            "Fix: pass 1 to run after every epoch, N to run every N epochs."
        )


def should_run(epoch, every_n_epochs, params, epochs_to_run=(), model=None):
    """Whether a periodic callback runs at the end of the 0-based ``epoch``.

    It runs when ``epoch + 1`` is a multiple of ``every_n_epochs`` (when given), is listed in
    ``epochs_to_run``, is the last epoch of ``fit`` (``params["epochs"]``), or training is
    being stopped early (``model.stop_training``, set by e.g. a time limit before this
    callback's ``on_epoch_end``), so the final encoder is always evaluated.
    """
    number = epoch + 1
    if model is not None and getattr(model, "stop_training", False):
        return True
    if every_n_epochs is not None and number % every_n_epochs == 0:
        return True
    if number in epochs_to_run:
        return True
    return (params or {}).get("epochs") == number


def _is_dataset(data):
    return not isinstance(data, tuple)
