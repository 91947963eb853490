"""Colorization: predict the colour (ab) of a photo from its lightness (L) as a classification."""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.layers.batch_norm import BatchNormalization
from keras_ssl.losses.classification import rebalanced_cross_entropy
from keras_ssl.methods.base import SSLMethod, check_encoder
from keras_ssl.pretext import color
from keras_ssl.validation import check_in_range, check_int, check_positive_number

_POOLING = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


# ----------------------------------------------------------------------------------- loss


# -------------------------------------------------------------------------- components
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


def pixel_classifier(map_shape, image_size, num_classes, hidden_dim, synchronized_bn, name):
    """Feature maps ``[batch, h, w, c]`` -> per-pixel logits ``[batch, H, W, num_classes]``.

    A 3x3 convolution with BatchNorm and ReLU, bilinear upsampling to the image size and a 1x1
    convolution to the class logits.
    """
    height, width = image_size
    factor = (height // map_shape[0], width // map_shape[1])
    if height % map_shape[0] or width % map_shape[1]:
        raise ValueError(
            f"The image size {image_size} must be a multiple of the encoder's feature-map size "
            f"{tuple(map_shape[:2])} for the per-pixel head. Fix: use an image size divisible by "
            f"{tuple(map_shape[:2])} (e.g. a power of two for the keras_ssl ResNets)."
        )
    maps = keras.Input(tuple(map_shape), name="feature_maps")
    x = keras.layers.Conv2D(hidden_dim, 3, padding="same", use_bias=False, name=f"{name}_conv")(
        maps
    )
    x = BatchNormalization(synchronized=synchronized_bn, name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    if factor != (1, 1):
        x = keras.layers.UpSampling2D(factor, interpolation="bilinear", name=f"{name}_up")(x)
    logits = keras.layers.Conv2D(num_classes, 1, name=f"{name}_logits")(x)
    return keras.Model(maps, logits, name=name)


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


class LabMethod(SSLMethod):
    """Shared plumbing of the colour methods: RGB inputs, Lab inside, RGB export.

    The encoder(s) see Lab channels, but the model's inputs, augmentations, probes and export
    are RGB images ``[batch, H, W, 3]``: ``image_shape`` is the RGB shape and
    :attr:`export_encoder` (``rgb_encoder``, built by the subclass) maps RGB images to features.
    """

    #: Colour methods learn from the ab channels: grayscale data cannot train them.
    requires_rgb = True

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
        batch = data[0] if isinstance(data, (tuple, list)) else data
        if isinstance(batch, dict):
            batch = batch.get("images", batch.get("views", (None,))[0])
        if batch is not None and hasattr(batch, "shape"):
            check_rgb(batch, type(self).__name__)
        return super().unpack_batch(data)

    def _check_fit_input(self, x, batch_size):
        if isinstance(x, np.ndarray):
            check_rgb(x, type(self).__name__, "x")
        elif isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if isinstance(spec, (tuple, list)):
                spec = spec[0]
            if isinstance(spec, dict):
                spec = spec.get("images", spec.get("views", (None,))[0])
            if isinstance(spec, tf.TensorSpec):
                check_rgb(spec, type(self).__name__, "dataset images")
        super()._check_fit_input(x, batch_size)

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


# -------------------------------------------------------------------------------- method
@keras.saving.register_keras_serializable(package="keras_ssl")
class Colorization(LabMethod):
    """Colorization (Zhang, Isola, Efros 2016, "Colorful Image Colorization",
    https://arxiv.org/abs/1603.08511).

    RGB images are converted to CIE Lab in the step; the encoder sees the lightness ``L / 100``
    (one channel) and a per-pixel head on its last feature maps predicts, for every pixel, a
    distribution over the quantised ab colours (``color.ab_gamut_bins``: grid size 10 cells
    reached by sRGB colours). Targets are soft-encoded over the 5 nearest bins with a Gaussian
    kernel (sigma 5); the class-rebalanced cross-entropy weights each pixel by the inverse of
    the smoothed empirical frequency of its colour, mixed with uniform (lambda = 0.5), so rare
    saturated colours are not washed out by the common greys. :meth:`colorize` decodes the
    predictions with the annealed mean (T = 0.38).

    The empirical bin frequencies are a non-trainable weight (``bin_frequencies``, saved with
    the model), uniform until :meth:`adapt` counts them from the training images; with uniform
    frequencies the weights are close to 1 (0.98-1.16: the smoothing thins the prior at the
    gamut's edge), nearly the plain cross-entropy.

    Inputs are RGB images ``[batch, H, W, 3]``; ``model(images)``, the probes and
    ``keras_ssl.export`` use :attr:`export_encoder`, RGB -> L -> encoder features.

    Distribution: the loss is a mean over this replica's pixels (equal local batches, so the
    mean over replicas is the global mean); the frequencies are fixed during training; the
    head's BatchNorm can be synchronised (``synchronized_bn``).

    Args:
        encoder: a convolutional encoder ending in global pooling; built for 1-channel inputs
            (the L channel) or for RGB, then rebuilt (fresh weights) for one channel.
        augmenter: view generator (RGB); default: random resized crop and flip, one view.
        grid_size: ab quantisation grid (paper: 10).
        sigma: soft-encoding kernel width and prior smoothing width, ab units (paper: 5).
        neighbours: nearest bins of the soft encoding (paper: 5).
        mix: weight lambda of the uniform distribution in the rebalancing (paper: 0.5).
        temperature: annealed-mean temperature of :meth:`colorize` (paper: 0.38).
        head_dim: channels of the per-pixel head's hidden convolution (``None``: the feature
            maps' channels).
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    loss_terms = ("loss", "bin_accuracy")

    def __init__(
        self,
        encoder,
        augmenter=None,
        grid_size=color.GRID_SIZE,
        sigma=color.SIGMA,
        neighbours=color.NEIGHBOURS,
        mix=color.MIX,
        temperature=color.TEMPERATURE,
        head_dim=None,
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        encoder = rebuild_encoder(encoder, 1, "Colorization")
        super().__init__(
            encoder,
            augmenter=augmenter,
            probe_classes=probe_classes,
            synchronized_bn=synchronized_bn,
            **kwargs,
        )
        check_positive_number(grid_size, "grid_size", "use 10 (Zhang et al.).")
        check_positive_number(sigma, "sigma", "use 5 (Zhang et al.).")
        check_positive_number(temperature, "temperature", "use 0.38 (Zhang et al.).")
        check_int(neighbours, "neighbours", 1, "use 5 (Zhang et al.).")
        check_in_range(mix, "mix", 0, 1, "use 0.5 (Zhang et al.).", low_open=True)
        self.image_shape = (*self.image_shape[:2], 3)
        self.grid_size = grid_size
        self.sigma = sigma
        self.neighbours = neighbours
        self.mix = mix
        self.temperature = temperature
        self.head_dim = head_dim
        self.bins = color.ab_gamut_bins(grid_size)
        self.num_bins = len(self.bins)
        self.backbone = spatial_backbone(self.encoder, "Colorization")
        map_shape = tuple(self.backbone.outputs[0].shape[1:])
        self.head = pixel_classifier(
            map_shape,
            self.image_shape[:2],
            self.num_bins,
            head_dim or map_shape[-1],
            self.batch_norm_synchronized,
            "ab_head",
        )
        self.rgb_encoder = self._rgb_model([(lambda lab: lab[0], self.encoder)], "rgb_encoder")
        self.bin_frequencies = self.add_weight(
            shape=(self.num_bins,),
            initializer=keras.initializers.Constant(1.0 / self.num_bins),
            trainable=False,
            name="bin_frequencies",
        )

    def build_heads(self, feature_shape):
        self.head.build((None, *self.head.input_shape[1:]))

    def ab_logits(self, lightness, training=False):
        """Per-pixel ab-bin logits ``[batch, H, W, Q]`` and pooled features of ``L / 100``."""
        maps, features = self.backbone(lightness, training=training)
        return tf.cast(self.head(maps, training=training), tf.float32), features

    def class_weights(self):
        """The rebalancing weights ``[Q]`` of the current ``bin_frequencies``."""
        return color.rebalancing_weights(self.bin_frequencies, self.bins, self.sigma, self.mix)

    def compute_ssl_loss(self, views, training):
        lab = color.rgb_to_lab(views[0])
        logits, features = self.ab_logits(lab[..., :1] / 100.0, training=training)
        targets = color.soft_encode(lab[..., 1:], self.bins, self.sigma, self.neighbours)
        losses = rebalanced_cross_entropy(targets, logits, self.class_weights())
        hits = tf.equal(tf.argmax(logits, axis=-1), tf.argmax(targets, axis=-1))
        accuracy = tf.reduce_mean(tf.cast(hits, tf.float32))
        return {"loss": tf.reduce_mean(losses), "bin_accuracy": accuracy}, features

    def adapt(self, data, max_batches=None):
        """Sets ``bin_frequencies`` to the empirical ab-bin frequencies of ``data``.

        Args:
            data: RGB training images (array or dataset, see ``color.ab_bin_frequencies``).
            max_batches: count at most this many batches.

        Returns:
            The frequencies ``[Q]`` (NumPy).
        """
        frequencies = color.ab_bin_frequencies(data, self.bins, max_batches=max_batches)
        self.bin_frequencies.assign(frequencies.astype(np.float32))
        return frequencies

    def colorize(self, images, temperature=None):
        """Colours images from their lightness with the annealed mean of the predictions.

        Args:
            images: ``[batch, H, W, 3]`` RGB or ``[batch, H, W, 1]`` grayscale (``uint8`` or
                float in ``[0, 1]``); only the lightness is used.
            temperature: annealed-mean ``T`` (default: the model's, 0.38).

        Returns:
            float32 NumPy RGB images ``[batch, H, W, 3]`` in ``[0, 1]``.
        """
        images = to_float_images(images)
        check_image_batch(images, (*self.image_shape[:2], None))
        if images.shape[-1] == 1:
            images = tf.image.grayscale_to_rgb(images)
        check_rgb(images, "Colorization.colorize")
        lightness = color.rgb_to_lab(images)[..., :1]
        logits, _ = self.ab_logits(lightness / 100.0, training=False)
        ab = color.annealed_mean(logits, self.bins, temperature or self.temperature)
        return color.lab_to_rgb(tf.concat([lightness, ab], axis=-1)).numpy()

    def get_config(self):
        return {
            **super().get_config(),
            "grid_size": self.grid_size,
            "sigma": self.sigma,
            "neighbours": self.neighbours,
            "mix": self.mix,
            "temperature": self.temperature,
            "head_dim": self.head_dim,
        }
