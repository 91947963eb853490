"""``LabMethod``: the base of the colour methods, which take RGB images and learn in CIE Lab.

Colorization and the split-brain autoencoder predict colour channels of Lab from the others
with per-pixel classifiers on an encoder's feature maps. This module holds what they share: the
RGB input checks, the encoder rebuilt for the Lab channels it sees, the feature-map backbone,
the per-pixel heads and the RGB -> Lab -> features model that is exported.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.layers.pixel_classifier import pixel_classifier
from keras_ssl.methods.base import SSLMethod, check_encoder
from keras_ssl.pretext import color

_POOLING = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def rebuild_encoder(encoder, channels, method):
    """``encoder`` if it takes ``channels`` channels, else a fresh copy built for them."""
    check_encoder(encoder)
    shape = tuple(encoder.input_shape[1:])
    if shape[-1] == channels:
        return encoder
    try:
        inputs = keras.Input((*shape[:2], channels), name=encoder.inputs[0].name)
        return keras.models.clone_model(encoder, input_tensors=inputs)
    except (AttributeError, ValueError, TypeError, NotImplementedError) as error:
        raise ValueError(
            f"{method} could not rebuild the encoder {encoder.name!r} (input {shape}) for "
            f"{channels}-channel inputs: {error}. Expected a functional/Sequential encoder. "
            f"Fix: build the encoder with input_shape={(*shape[:2], channels)}."
        ) from error


def spatial_backbone(encoder, method):
    """A model sharing ``encoder``'s layers: images -> ``[feature maps, pooled features]``."""
    last = encoder.layers[-1] if getattr(encoder, "layers", None) else None
    maps = getattr(last, "input", None) if isinstance(last, _POOLING) else None
    if maps is None or len(maps.shape) != 4:
        raise ValueError(
            f"{method} predicts a value per pixel, so it needs the encoder's feature maps: "
            f"expected an encoder ending in global pooling over [batch, h, w, c] maps; received "
            f"{encoder.name!r} whose last layer is {type(last).__name__}. Fix: use a "
            "convolutional backbone such as keras_ssl.backbones.SmallResNet or ResNet18."
        )
    return keras.Model(encoder.inputs[0], [maps, encoder.outputs[0]], name=f"{encoder.name}_maps")


def check_rgb(images, method, name="images"):
    """Raises a ``ValueError`` naming the fix unless ``images`` are ``[batch, H, W, 3]``."""
    shape = tuple(images.shape)
    if len(shape) == 4 and shape[-1] is not None and shape[-1] != 3:
        raise ValueError(
            f"{method} needs RGB images [batch, height, width, 3]: it learns by predicting "
            f"colour channels of CIE Lab from the others; received `{name}` of shape {shape} "
            f"({shape[-1]} channel(s)). Fix: train on colour images, e.g. "
            "keras_ssl.datasets.sample_photos.load_data() or config.data.dataset="
            "'tfds:cifar10'; grayscale data such as Fashion-MNIST has no colour to learn from."
        )


def _images_in(batch):
    """The images (or first view) of a batch, or of a dataset's element spec, in any form."""
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    if isinstance(batch, dict):
        batch = batch.get("images", batch.get("views", (None,))[0])
    return batch


class LabMethod(SSLMethod):
    """Shared plumbing of the colour methods: RGB inputs, Lab inside, RGB export.

    The encoder(s) see Lab channels, but the model's inputs, augmentations, probes and export
    are RGB images ``[batch, H, W, 3]``: ``image_shape`` is the RGB shape and
    :attr:`export_encoder` (``rgb_encoder``, built by the subclass) maps RGB images to features.

    ``encoder`` is the network that sees the lightness ``L / 100``: an encoder built for other
    inputs (e.g. RGB) is rebuilt, with fresh weights, for one channel. The other arguments are
    :class:`SSLMethod`'s.
    """

    #: Colour methods learn from the ab channels: grayscale data cannot train them.
    requires_rgb = True

    def __init__(self, encoder, **kwargs):
        encoder = rebuild_encoder(encoder, 1, type(self).__name__)
        super().__init__(encoder, **kwargs)
        self.image_shape = (*self.image_shape[:2], 3)

    def default_augmenter(self):
        """One view with a random resized crop (scale 0.5-1) and a horizontal flip."""
        from keras_ssl.augment import presets

        return presets.crop_flip((*self.encoder.input_shape[1:3], 3))

    @property
    def export_encoder(self):
        return self.rgb_encoder

    def call(self, inputs, training=False):
        if hasattr(inputs, "shape"):
            check_rgb(inputs, type(self).__name__)
        return super().call(inputs, training=training)

    def unpack_batch(self, data):
        batch = _images_in(data)
        if batch is not None and hasattr(batch, "shape"):
            check_rgb(batch, type(self).__name__)
        return super().unpack_batch(data)

    def _check_fit_input(self, x, batch_size):
        if isinstance(x, np.ndarray):
            check_rgb(x, type(self).__name__, "x")
        elif isinstance(x, tf.data.Dataset):
            spec = _images_in(x.element_spec)
            if isinstance(spec, tf.TensorSpec):
                check_rgb(spec, type(self).__name__, "dataset images")
        super()._check_fit_input(x, batch_size)

    def pixel_head(self, backbone, num_classes, head_dim, name):
        """A ``layers.pixel_classifier`` on the feature maps of ``backbone`` (a
        :func:`spatial_backbone`), predicting at the image size; ``head_dim=None`` takes the
        maps' channels."""
        map_shape = tuple(backbone.outputs[0].shape[1:])
        return pixel_classifier(
            map_shape,
            self.image_shape[:2],
            num_classes,
            head_dim or map_shape[-1],
            self.batch_norm_synchronized,
            name,
        )

    def _rgb_model(self, branches, name):
        images = keras.Input(self.image_shape, name="images")
        lab = LabSplit(name="lab")(images)
        features = [encoder(transform(lab)) for transform, encoder in branches]
        if len(features) > 1:
            features = [keras.layers.Concatenate(name="features")(features)]
        return keras.Model(images, features[0], name=name)


@keras.saving.register_keras_serializable(package="keras_ssl")
class LabSplit(keras.layers.Layer):
    """RGB ``[batch, H, W, 3]`` -> encoder inputs ``(L / 100, (ab + 128) / 256)`` in [0, 1]."""

    def call(self, images):
        lab = color.rgb_to_lab(images)
        return lab[..., :1] / 100.0, (lab[..., 1:] + 128.0) / 256.0

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1), (*input_shape[:-1], 2)
