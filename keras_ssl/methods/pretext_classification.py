"""``PretextClassificationMethod``: the base of the methods that learn by classifying a label
they make from each image (RotationPrediction, Jigsaw, RelativePatchLocation)."""

from keras_ssl.layers.mlp_head import MLPHead
from keras_ssl.losses.pretext_classification import classification_terms
from keras_ssl.methods.base import SSLMethod


def check_hidden_dims(value, name):
    """``value`` as a tuple of positive ints, or a ``ValueError`` saying how to fix it."""
    try:
        dims = tuple(value)
        valid = all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims)
    except TypeError:
        valid = False
    if not valid:
        raise ValueError(
            f"`{name}` must be a sequence of positive ints (hidden layer sizes); received "
            f"{value!r}. Fix: pass e.g. {name}=(256,), or () for a linear classifier."
        )
    return dims


class PretextClassificationMethod(SSLMethod):
    """Base of the pretext-classification methods: an MLP classifier predicts a label that the
    method makes from each image of the first view.

    A subclass makes the pretext examples and their labels and runs the encoder and
    ``classifier`` on them in :meth:`pretext_logits`; the base turns the logits into the loss,
    the mean sparse softmax cross-entropy, and ``pretext_accuracy``, the fraction classified
    right (:func:`keras_ssl.losses.pretext_classification.classification_terms`). Every example
    is classified on its own, so with pretext labels drawn for the global batch
    (``step_random.global_batch_draws``) the mean of the replicas' losses is the global loss.

    Subclasses set :attr:`classifier_name` and :attr:`classifier_inputs` and pass the number of
    classes to ``super().__init__``; the light one-view ``crop_flip`` preset is the default
    augmentation.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        num_classes: number of pretext labels (the classifier's outputs).
        augmenter: view generator; default ``presets.crop_flip`` (one view). The first is used.
        head_hidden_dims: hidden layer sizes of the classifier (``()``: linear).
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    default_preset = "crop_flip"

    loss_terms = ("loss", "pretext_accuracy")

    #: Name of the classifier layer.
    classifier_name = "pretext_classifier"

    #: Encoder feature vectors concatenated into one classifier input (``D`` each).
    classifier_inputs = 1

    def __init__(
        self,
        encoder,
        num_classes,
        augmenter=None,
        head_hidden_dims=(),
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(
            encoder,
            augmenter=augmenter,
            probe_classes=probe_classes,
            synchronized_bn=synchronized_bn,
            **kwargs,
        )
        self.head_hidden_dims = check_hidden_dims(head_hidden_dims, "head_hidden_dims")
        self.classifier = MLPHead(
            hidden_dims=self.head_hidden_dims,
            output_dim=num_classes,
            synchronized=self.batch_norm_synchronized,
            name=self.classifier_name,
        )

    def build_heads(self, feature_shape):
        self.classifier.build((None, self.classifier_inputs * self.feature_dim))

    def pretext_logits(self, view, training):
        """Classifies this replica's pretext examples of one view.

        Args:
            view: float32 ``[n, H, W, C]``, the first view.
            training: whether layers run in training mode.

        Returns:
            ``(logits, labels, features)``: ``[m, classes]`` classifier scores of the ``m``
            pretext examples, their int32 labels ``[m]``, and the encoder features ``[n, D]``
            of the ``n`` images, for the online probe.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement pretext_logits().")

    def compute_ssl_loss(self, views, training):
        logits, labels, features = self.pretext_logits(views[0], training)
        loss, accuracy = classification_terms(logits, labels)
        return {"loss": loss, "pretext_accuracy": accuracy}, features

    def get_config(self):
        return {**super().get_config(), "head_hidden_dims": self.head_hidden_dims}
