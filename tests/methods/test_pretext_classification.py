import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones
from keras_ssl.losses.pretext_classification import classification_terms
from keras_ssl.methods import Jigsaw, RelativePatchLocation, RotationPrediction
from keras_ssl.methods.pretext_classification import (
    PretextClassificationMethod,
    check_hidden_dims,
)

IMAGE_SHAPE = (8, 8, 1)


class FlipPrediction(PretextClassificationMethod):
    """A minimal pretext task for the base's tests: is the image flipped upside down?"""

    classifier_name = "flip_classifier"

    def __init__(self, encoder, **kwargs):
        super().__init__(encoder, 2, **kwargs)

    def pretext_logits(self, view, training):
        images = tf.concat([view, tf.reverse(view, axis=[1])], axis=0)
        labels = tf.repeat(tf.range(2, dtype=tf.int32), tf.shape(view)[0])
        features = self.encoder(images, training=training)
        return self.classifier(features, training=training), labels, features[: tf.shape(view)[0]]


def make_encoder():
    return backbones.SmallResNet(IMAGE_SHAPE, widths=(4,))


def test_the_base_turns_pretext_logits_into_the_loss_terms():
    keras.utils.set_random_seed(0)
    model = FlipPrediction(make_encoder(), head_hidden_dims=(8,), probe_classes=3)
    assert model.loss_terms == ("loss", "pretext_accuracy")
    assert model.classifier.name == "flip_classifier" and model.classifier.output_dim == 2
    assert model.classifier.hidden_dims == (8,) and model.classifier.built
    assert model.get_config()["head_hidden_dims"] == (8,)
    assert model.augmenter.num_views == 1  # the crop_flip preset
    view = tf.constant(np.random.default_rng(0).random((4, *IMAGE_SHAPE), dtype=np.float32))
    terms, features = model.compute_ssl_loss((view,), training=False)
    logits, labels, expected_features = model.pretext_logits(view, training=False)
    loss, accuracy = classification_terms(logits, labels)
    np.testing.assert_allclose(float(terms["loss"]), float(loss), rtol=1e-6)
    np.testing.assert_allclose(float(terms["pretext_accuracy"]), float(accuracy))
    np.testing.assert_allclose(features, expected_features, rtol=1e-6)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    logs = model.train_on_batch({"views": (view,), "labels": np.arange(4) % 3}, return_dict=True)
    assert set(logs) == {"loss", "pretext_accuracy", "probe_loss", "probe_accuracy"}


def test_the_three_pretext_methods_use_the_base():
    for method, name, inputs in (
        (RotationPrediction, "rotation_classifier", 1),
        (Jigsaw, "permutation_classifier", 9),
        (RelativePatchLocation, "location_classifier", 2),
    ):
        assert issubclass(method, PretextClassificationMethod)
        assert method.classifier_name == name and method.classifier_inputs == inputs
        assert method.default_preset == "crop_flip"


def test_a_method_without_pretext_logits_raises():
    class Unfinished(PretextClassificationMethod):
        pass

    model = Unfinished(make_encoder(), 3)
    assert model.classifier.name == "pretext_classifier"
    with pytest.raises(NotImplementedError, match="Unfinished must implement pretext_logits"):
        model.compute_ssl_loss((tf.zeros((2, *IMAGE_SHAPE)),), training=False)


def test_check_hidden_dims():
    assert check_hidden_dims([16, 8], "dims") == (16, 8)
    assert check_hidden_dims((), "dims") == ()
    for bad in ((0,), 8, (True,), (2.0,)):
        with pytest.raises(ValueError, match=r"`dims` must be a sequence of positive ints.*Fix"):
            check_hidden_dims(bad, "dims")
