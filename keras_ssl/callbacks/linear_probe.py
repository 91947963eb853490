"""LinearProbe: accuracy of a logistic-regression probe on the encoder's embeddings."""

from keras_ssl.callbacks.base import ProbeCallback
from keras_ssl.evaluation.features import (
    check_labelled_data,
    extract_labelled_features,
)
from keras_ssl.evaluation.linear import check_linear_probe_arguments, linear_probe
from keras_ssl.validation import check_int


class LinearProbe(ProbeCallback):
    """Logs the test accuracy of a linear classifier trained on frozen ``model.encoder`` features.

    When the probe runs, both sets are embedded with ``self.model.encoder``
    (``training=False``, not normalised) and :func:`keras_ssl.evaluation.linear_probe` trains a
    softmax classifier on the standardised training embeddings for ``probe_epochs`` epochs;
    its test top-1 accuracy goes into the epoch logs under ``name`` (visible in the progress
    bar and in ``fit``'s ``History``). By default it runs only after the last epoch of
    ``fit`` (or the epoch after which training stops early, when ``stop_training`` is set
    before this callback runs); ``every_n_epochs`` and ``epochs_to_run`` add more epochs
    (counted from 1).

    Epochs where the probe does not run get ``NaN`` under ``name``, so
    ``history.history[name]`` stays aligned with the epochs (see :class:`KNNProbe`). Callbacks
    that read the logs must come after this one in the ``callbacks`` list.

    Args:
        train_data: ``(images, labels)`` arrays or a ``tf.data.Dataset`` of ``(image, label)``
            pairs used to fit the probe.
        test_data: the same forms; the reported accuracy is measured here.
        every_n_epochs: run every this many epochs; ``None`` for no periodic runs.
        epochs_to_run: iterable of epoch numbers (from 1) at which to run.
        probe_epochs: training epochs of the linear classifier.
        batch_size: images per encoder call.
        probe_batch_size: examples per step of the linear classifier.
        learning_rate: peak Adam learning rate of the classifier.
        weight_decay: L2 penalty on the classifier weights.
        num_classes: number of classes; ``None`` infers it from the labels.
        seed: seed of the classifier's batch order.
        name: the logs key.
        verbose: 1 prints the accuracies and the probe's wall time when it runs.

    Attributes:
        results: dict ``epoch (from 1) -> linear_probe result dict`` (``accuracy``,
            ``train_accuracy``, ``top5_accuracy`` when more than 5 classes).
    """

    def __init__(
        self,
        train_data,
        test_data,
        every_n_epochs=None,
        epochs_to_run=None,
        probe_epochs=100,
        batch_size=512,
        probe_batch_size=1024,
        learning_rate=1e-3,
        weight_decay=1e-4,
        num_classes=None,
        seed=0,
        name="linear_accuracy",
        verbose=0,
    ):
        super().__init__(every_n_epochs, epochs_to_run, verbose)
        self.train_data = check_labelled_data(train_data, "train_data")
        self.test_data = check_labelled_data(test_data, "test_data")
        check_int(probe_epochs, "probe_epochs")
        check_int(batch_size, "batch_size")
        check_int(probe_batch_size, "probe_batch_size")
        check_linear_probe_arguments(
            num_classes, probe_epochs, probe_batch_size, learning_rate, weight_decay, seed
        )
        self.probe_epochs = probe_epochs
        self.batch_size = batch_size
        self.probe_batch_size = probe_batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.num_classes = num_classes
        self.seed = seed
        self.name = name
        self.log_keys = (name,)

    def log_values(self, result):
        return {self.name: result["accuracy"]}

    def evaluate(self):
        """Runs the probe on the current encoder and returns the ``linear_probe`` result dict."""
        train_features, train_labels = extract_labelled_features(
            self.encoder, self.train_data, self.batch_size, normalize=False
        )
        test_features, test_labels = extract_labelled_features(
            self.encoder, self.test_data, self.batch_size, normalize=False
        )
        return linear_probe(
            train_features,
            train_labels,
            test_features,
            test_labels,
            num_classes=self.num_classes,
            epochs=self.probe_epochs,
            batch_size=self.probe_batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            seed=self.seed,
        )
