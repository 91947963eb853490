"""``ClusteringProbe``: unsupervised clustering accuracy of a clustering method during ``fit``."""

from keras_ssl.callbacks.base import ProbeCallback, check_every_n_epochs
from keras_ssl.evaluation.clustering import clustering_accuracy
from keras_ssl.evaluation.features import as_image_array, check_labels


class ClusteringProbe(ProbeCallback):
    """Logs the clustering accuracy of ``model.predict_clusters`` on labelled images in ``fit``.

    At the end of every ``every_n_epochs``-th epoch (and the last one) the model assigns
    ``images`` to clusters and :func:`clustering_accuracy` scores them against ``labels``; the
    value goes into the epoch logs under ``name`` (``NaN`` on epochs where it does not run).

    Args:
        images: ``[N, H, W, C]`` NumPy images (``uint8`` or float in ``[0, 1]``).
        labels: ``[N]`` integer classes.
        every_n_epochs: run every this many epochs (the last epoch always runs).
        name: the logs key.
        verbose: 1 prints the accuracy when it runs.
    """

    def __init__(self, images, labels, every_n_epochs=1, name="clustering_accuracy", verbose=0):
        check_every_n_epochs(every_n_epochs)
        super().__init__(every_n_epochs=every_n_epochs, verbose=verbose)
        self.images = as_image_array(images)
        self.labels = check_labels(labels, len(self.images), features_name="images")
        self.name = name
        self.log_keys = (name,)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not callable(getattr(self.model, "predict_clusters", None)):
            raise ValueError(
                f"ClusteringProbe needs a model with a `predict_clusters(images)` method; "
                f"received {type(self.model).__name__}, which has none. Fix: use it with a "
                "clustering method (IIC, DeepCluster), or use KNNProbe / LinearProbe."
            )

    def evaluate(self):
        """Returns the clustering accuracy of the current model (a float)."""
        return clustering_accuracy(self.labels, self.model.predict_clusters(self.images))

    def log_values(self, result):
        return {self.name: result}
