"""KNNProbe: weighted kNN accuracy of the encoder's embeddings, logged during ``fit``."""

import tensorflow as tf

from keras_ssl.callbacks.base import ProbeCallback, check_every_n_epochs
from keras_ssl.evaluation.features import (
    check_labelled_data,
    extract_labelled_features,
)
from keras_ssl.evaluation.knn import TEMPERATURE, check_knn_arguments, knn_accuracy
from keras_ssl.validation import check_int


class KNNProbe(ProbeCallback):
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

    log_keys = ("knn_accuracy",)

    def __init__(
        self,
        train_data,
        test_data,
        k=20,
        temperature=TEMPERATURE,
        every_n_epochs=1,
        batch_size=512,
        num_classes=None,
        name="knn_accuracy",
        verbose=0,
    ):
        check_every_n_epochs(every_n_epochs)
        super().__init__(every_n_epochs=every_n_epochs, verbose=verbose)
        self.train_data = check_labelled_data(train_data, "train_data")
        self.test_data = check_labelled_data(test_data, "test_data")
        num_train = (
            None if isinstance(self.train_data, tf.data.Dataset) else len(self.train_data[1])
        )
        check_knn_arguments(k, temperature, num_train)
        check_int(batch_size, "batch_size")
        if num_classes is not None:
            check_int(num_classes, "num_classes")
        self.k = k
        self.temperature = temperature
        self.batch_size = batch_size
        self.num_classes = num_classes
        self.name = name
        self.log_keys = (name,)

    def log_values(self, result):
        return {self.name: result}

    def evaluate(self):
        """Runs the probe on the current encoder and returns the kNN accuracy (a float)."""
        train_features, train_labels = extract_labelled_features(
            self.encoder, self.train_data, self.batch_size
        )
        test_features, test_labels = extract_labelled_features(
            self.encoder, self.test_data, self.batch_size
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
