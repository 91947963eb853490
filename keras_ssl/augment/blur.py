"""Random Gaussian blur with a different sigma for every image, done as one batched operation."""

import keras
import tensorflow as tf

from keras_ssl.augment.base import (
    BaseAugmentation,
    apply_mask,
    batch_size_of,
    check_probability,
    check_range,
    clip_unit,
    in_xla_context,
)
from keras_ssl.augment.seeds import fold_in, lerp, uniform_per_image
from keras_ssl.validation import check_int


def gaussian_kernels(sigmas, kernel_size):
    """Normalised 1-D Gaussian kernels, one per sigma.

    Args:
        sigmas: ``float32`` ``[batch]`` standard deviations in pixels.
        kernel_size: odd kernel length.

    Returns:
        ``float32`` ``[batch, kernel_size]``; tap ``k`` weighs the pixel ``k - kernel_size // 2``
        away, and each row sums to 1.
    """
    radius = kernel_size // 2
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    weights = tf.exp(-tf.square(offsets)[None, :] / (2.0 * tf.square(sigmas)[:, None]))
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def _blur_axis(images, kernels, axis):
    """Convolves image ``i`` with ``kernels[i]`` along ``axis`` (1 or 2), reflect padding."""
    kernel_size = kernels.shape[1]
    radius = kernel_size // 2
    length = images.shape[axis]
    paddings = [[0, 0]] * 4
    paddings[axis] = [radius, radius]
    padded = tf.pad(images, paddings, mode="REFLECT")
    out = None
    for tap in range(kernel_size):
        begin = [0, 0, 0, 0]
        begin[axis] = tap
        size = [-1, -1, -1, -1]
        size[axis] = length
        term = tf.slice(padded, begin, size) * tf.reshape(kernels[:, tap], [-1, 1, 1, 1])
        out = term if out is None else out + term
    return out


def _blur_depthwise(images, kernels):
    """Both blur passes as depthwise convolutions with the batch folded into the channels."""
    kernel_size = kernels.shape[1]
    radius = kernel_size // 2
    height, width, channels = images.shape[1:]
    batch_size = tf.shape(images)[0]
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "REFLECT")
    folded = tf.reshape(
        tf.transpose(padded, [1, 2, 0, 3]), [1, height + 2 * radius, width + 2 * radius, -1]
    )
    # taps[k, i * C + c] = kernels[i, k]: every channel of image i uses image i's kernel.
    taps = tf.reshape(tf.repeat(tf.transpose(kernels), channels, axis=1), [kernel_size, -1])
    strides = [1, 1, 1, 1]
    folded = tf.nn.depthwise_conv2d(folded, taps[:, None, :, None], strides, "VALID")
    folded = tf.nn.depthwise_conv2d(folded, taps[None, :, :, None], strides, "VALID")
    return tf.transpose(tf.reshape(folded, [height, width, batch_size, channels]), [2, 0, 1, 3])


def gaussian_blur(images, sigmas, kernel_size):
    """Separable Gaussian blur of image ``i`` with ``sigmas[i]``, reflect-padded borders.

    The whole batch is blurred at once with per-image kernels: on the TensorFlow executor as
    two depthwise convolutions with the batch folded into the channels, and inside XLA (where
    that convolution is slow on CPU) as weighted sums of ``kernel_size`` shifted copies of the
    padded batch. Both give the same result up to float rounding.

    Args:
        images: ``float32`` ``[batch, H, W, C]`` with static ``H`` and ``W`` larger than
            ``kernel_size // 2``.
        sigmas: ``float32`` ``[batch]`` standard deviations in pixels.
        kernel_size: odd kernel length.

    Returns:
        The blurred ``float32`` images, same shape.
    """
    return blur_with_kernels(images, gaussian_kernels(sigmas, kernel_size))


def blur_with_kernels(images, kernels):
    """Convolves image ``i`` with ``kernels[i]`` along both axes, with reflect padding.

    Args:
        images: ``float32`` ``[batch, H, W, C]`` with static ``H``, ``W`` and ``C``.
        kernels: ``float32`` ``[batch, kernel_size]`` with a static, odd ``kernel_size``.

    Returns:
        The filtered ``float32`` images, same shape (see :func:`gaussian_blur`).
    """
    if in_xla_context():
        return _blur_axis(_blur_axis(images, kernels, 1), kernels, 2)
    return _blur_depthwise(images, kernels)


@keras.saving.register_keras_serializable(package="keras_ssl")
class RandomGaussianBlur(BaseAugmentation):
    """Blurs each image with probability ``probability`` using its own random sigma.

    SimCLR (Chen et al. 2020, arXiv:2002.05709, appendix A) blurs ImageNet views with
    probability 0.5, ``sigma ~ U(0.1, 2.0)`` and a kernel 10% of the image side; it skips blur on
    CIFAR-10. Borders are reflect-padded.

    Args:
        kernel_size: odd kernel length in pixels, at most ``2 * side - 1`` for the image side.
        sigma: ``(min, max)`` range of the standard deviation in pixels, both positive.
        probability: chance that an image is blurred, in ``[0, 1]``.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, kernel_size, sigma=(0.1, 2.0), probability=0.5, **kwargs):
        super().__init__(**kwargs)
        fix = "pass an odd size such as 2 * (side // 20) + 1."
        kernel_size = check_int(kernel_size, "kernel_size", 1, fix)
        if kernel_size % 2 == 0:
            raise ValueError(
                f"RandomGaussianBlur `kernel_size` must be odd (a kernel centred on each "
                f"pixel); received {kernel_size!r}. Fix: {fix}"
            )
        self.kernel_size = kernel_size
        self.sigma = check_range(sigma, "sigma", low=0.0, low_open=True)
        self.probability = check_probability(probability, "probability")

    def augment(self, images, seed):
        radius = self.kernel_size // 2
        height, width = images.shape[1], images.shape[2]
        if height is None or width is None or radius >= min(height, width):
            raise ValueError(
                f"RandomGaussianBlur needs images with static height and width larger than "
                f"kernel_size // 2 = {radius} (reflect padding); received shape "
                f"{tuple(images.shape)} with kernel_size={self.kernel_size}. Fix: use an odd "
                f"kernel_size of at most {2 * min(height or 1, width or 1) - 1} (2 * side - 1), "
                "or give the images a static size."
            )
        if self.probability == 0 or self.kernel_size == 1:
            return images
        batch_size = batch_size_of(images)
        sigmas = lerp(*self.sigma, uniform_per_image(batch_size, 1, fold_in(seed, 0))[:, 0])
        mask = apply_mask(batch_size, self.probability, fold_in(seed, 1))
        # Images that are not blurred get the unit impulse as kernel, which leaves them exact.
        impulse = tf.one_hot(radius, self.kernel_size)[None, :]
        kernels = tf.where(mask[:, None], gaussian_kernels(sigmas, self.kernel_size), impulse)
        # Normalised weights can sum to 1 + 1 ulp: clip so white stays exactly 1.
        return clip_unit(blur_with_kernels(images, kernels))

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, sigma=self.sigma, probability=self.probability)
        return config
