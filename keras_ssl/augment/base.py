"""The base class and argument checks shared by every keras_ssl augmentation layer."""

import math

import keras
import tensorflow as tf

from keras_ssl.augment.seeds import resolve_seed, uniform_per_image
from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.validation import check_in_range


def prepare_images(images, name="images"):
    """Converts ``images`` to ``float32`` in ``[0, 1]`` and checks it is a rank-4 batch.

    Args:
        images: ``uint8`` in ``[0, 255]`` or float in ``[0, 1]``,
            ``[batch, height, width, channels]``.
        name: how the tensor is named in error messages.

    Returns:
        A ``float32`` tensor of the same shape.
    """
    images = tf.convert_to_tensor(images)
    check_image_batch(images, name=name)
    return to_float_images(images)


def check_probability(value, name):
    """Raises ``ValueError`` unless ``value`` is a number in ``[0, 1]``; returns it as a float."""
    return check_in_range(value, name, 0, 1, fix=f"pass e.g. {name}=0.5.")


def check_range(value, name, low=-math.inf, high=math.inf, low_open=False):
    """Checks that ``value`` is a pair ``(a, b)`` with ``low <= a <= b <= high``.

    Args:
        value: the pair to check.
        name: the argument name used in error messages.
        low: the smallest allowed value.
        high: the largest allowed value.
        low_open: whether ``low`` itself is excluded.

    Returns:
        The pair as a tuple of two floats.
    """
    bracket = "(" if low_open else "["
    expected = f"a pair (a, b) with a <= b inside {bracket}{low}, {high}]"
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be {expected}; received {value!r}. Fix: pass e.g. {name}=(a, b)."
        ) from None
    below = a <= low if low_open else a < low
    if below or b > high or a > b:
        raise ValueError(
            f"`{name}` must be {expected}; received {value!r}. "
            f"Fix: choose bounds inside {bracket}{low}, {high}] in increasing order."
        )
    return (a, b)


def check_channels(images, allowed, layer_name):
    """Raises ``ValueError`` unless the static channel count of ``images`` is in ``allowed``."""
    channels = images.shape[-1]
    if channels not in allowed:
        raise ValueError(
            f"{layer_name} works on images with {' or '.join(str(c) for c in allowed)} "
            f"channels; received shape {tuple(images.shape)}. Fix: convert the images to RGB "
            "(3 channels) or grayscale (1 channel) first."
        )
    return channels


def batch_size_of(images):
    """The batch size: the static value when known, else a scalar tensor."""
    return images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]


class BaseAugmentation(keras.layers.Layer):
    """A batched, seedable image augmentation.

    Subclasses implement ``augment(images, seed)``: ``images`` are ``float32`` in ``[0, 1]`` with
    rank 4, ``seed`` is always an integer tensor of shape ``[2]`` and every random number must be
    drawn statelessly from it, separately for every image. ``call`` converts and checks the input
    and draws a seed statefully when none is given. The layers always augment (there is no
    ``training`` switch): they are meant for input pipelines and SSL train steps.

    The layer's dtype policy defaults to ``float32`` so that a global mixed-precision policy never
    casts images to ``float16`` on the way in.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, images, seed=None):
        """Augments a batch of images.

        Args:
            images: ``float32`` in ``[0, 1]`` (or ``uint8``), ``[batch, height, width, channels]``.
            seed: optional integer tensor of shape ``[2]``; the same seed gives identical output.

        Returns:
            The augmented ``float32`` images in ``[0, 1]``.
        """
        images = prepare_images(images, name=f"{self.__class__.__name__} images")
        return self.augment(images, resolve_seed(seed))

    def build(self, input_shape):
        # No weights; nested layers (RandomApply) are built when first called.
        self.built = True

    def augment(self, images, seed):
        """Augments ``float32`` images with randomness drawn statelessly from ``seed``."""
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def apply_mask(batch_size, probability, seed):
    """A boolean ``[batch]`` mask that is True for each image with ``probability``."""
    return uniform_per_image(batch_size, 1, seed)[:, 0] < probability


def select(mask, augmented, images):
    """Per image: ``augmented`` where ``mask`` is True, else ``images``.

    Computed as ``m * augmented + (1 - m) * images`` with ``m`` in ``{0, 1}``, which is exact
    for finite values and about twice as fast on CPU as ``tf.where`` with a broadcast mask.
    """
    weight = tf.reshape(tf.cast(mask, images.dtype), [-1, 1, 1, 1])
    return augmented * weight + images * (1.0 - weight)


def clip_unit(images):
    """Clips to ``[0, 1]`` with the single fused ``ClipByValue`` kernel."""
    return tf.raw_ops.ClipByValue(
        t=images,
        clip_value_min=tf.constant(0.0, images.dtype),
        clip_value_max=tf.constant(1.0, images.dtype),
    )


def in_xla_context():
    """Whether the ops being built will be compiled by XLA (``jit_compile=True``, TPU).

    Some fast CPU kernels (``CropAndResize``) have no XLA version and some XLA-friendly
    formulations are slow on the CPU executor, so a few layers pick their implementation here;
    both implementations are tested to agree.
    """
    try:
        from tensorflow.python.framework import ops
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # the private API moved: take the path that always compiles
        return True
    return control_flow_util.GraphOrParentsInXlaContext(ops.get_default_graph())
