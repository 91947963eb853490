"""Hole filling of the context encoder (Pathak et al. 2016, https://arxiv.org/abs/1604.07379):
the constant put in the dropped pixels, the context ``B * x + (1 - B) * fill`` the encoder
sees, the dataset mean ``adapt`` sets, and the inpainting evaluation (:class:`HoleFilling`)."""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.augment.seeds import canonical_seed
from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.methods.step_random import this_replica_rows
from keras_ssl.pretext import masks as masks_lib
from keras_ssl.validation import check_int

#: The paper's fill value: the ImageNet mean, (117, 104, 123) / 255 per RGB channel
#: (released code, ``train.lua``: ``2*117/255-1`` etc. in its [-1, 1] scale).
IMAGENET_MEAN = (117 / 255, 104 / 255, 123 / 255)
#: Its grey value for one-channel images: ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B.
IMAGENET_MEAN_GREY = (0.299 * 117 + 0.587 * 104 + 0.114 * 123) / 255


def check_fill_value(fill_value, channels):
    """The fill value of each channel, float32 ``[channels]``.

    Args:
        fill_value: a float in ``[0, 1]`` or one per channel; ``None`` is the paper's ImageNet
            mean :data:`IMAGENET_MEAN` for 3 channels and :data:`IMAGENET_MEAN_GREY` for 1.
        channels: the images' channels (1 or 3 when ``fill_value`` is ``None``).

    Raises:
        ValueError: for anything else, naming what was received.
    """
    if fill_value is None:
        mean = IMAGENET_MEAN if channels == 3 else [IMAGENET_MEAN_GREY]
        return np.asarray(mean, np.float32)
    values = np.asarray(fill_value, np.float64).reshape(-1) if _numbers(fill_value) else None
    if (
        values is None
        or len(values) not in (1, channels)
        or not np.all((values >= 0) & (values <= 1))
    ):
        raise ValueError(
            f"`fill_value` must be a float in [0, 1] or {channels} of them (one per "
            f"channel); received {fill_value!r}. Fix: pass the dataset's mean pixel value "
            "in [0, 1], e.g. 0.286 for Fashion-MNIST, or None for the ImageNet mean."
        )
    return np.broadcast_to(values, (channels,)).astype(np.float32)


def fill_holes(images, masks, fill):
    """``B * x + (1 - B) * fill``: ``images`` where ``masks`` is 1, ``fill`` in the holes.

    Args:
        images: ``[batch, H, W, C]`` floats.
        masks: ``B`` ``[batch, H, W, 1]``, 1 = kept, 0 = dropped.
        fill: the values of the holes, broadcastable to ``images`` (a fill value ``[C]``, or
            predicted images to paste in).
    """
    fill = tf.cast(fill, images.dtype)
    masks = tf.cast(masks, images.dtype)
    return images * masks + (1.0 - masks) * fill


class HoleFilling:
    """What an ``SSLMethod`` that drops and predicts image regions (the context encoder) drops
    and fills the holes with, and its inpainting evaluation.

    The method calls :meth:`setup_holes` in ``__init__`` and defines
    ``inpaint(images, masks, training)`` -> ``(predictions, codes)``; ``get_config`` returns
    the arguments of :meth:`setup_holes`.
    """

    def setup_holes(self, mask, region_masks, fill_value):
        """Checks and sets the mask kind, its mask source and the variable ``fill``.

        Args:
            mask: a kind in ``pretext.masks.MASK_TYPES``.
            region_masks: the mask source of ``"random_region"`` masks
                (``pretext.masks.region_source``).
            fill_value: the value of the holes (:func:`check_fill_value`); the value in use
                is the variable ``fill`` ``[C]``, which :meth:`adapt` replaces.
        """
        masks_lib.check_mask_kind(mask)
        self.mask = mask
        self.region_masks = region_masks
        self.fill_value = fill_value
        self._region_source = masks_lib.region_source(mask, region_masks, self.image_shape)
        channels = self.image_shape[-1]
        self.fill = self.add_weight(
            shape=(channels,),
            dtype="float32",
            initializer=keras.initializers.Constant(check_fill_value(fill_value, channels)),
            trainable=False,
            name="fill",
        )

    def make_masks(self, local_batch, seed):
        """Masks ``B`` ``[local_batch, H, W, 1]`` (1 = kept) for this replica's images, drawn
        for the global batch from ``seed`` (so N replicas match one device)."""
        everyone = masks_lib.make_masks(
            self.mask,
            local_batch * distribute.num_replicas(),
            self.image_shape,
            seed,
            self._region_source,
        )
        return this_replica_rows(everyone, local_batch)

    def adapt(self, data, batch_size=1024):
        """Sets the fill value to the per-channel mean pixel of ``data`` (the dataset mean).

        Args:
            data: training images ``[N, H, W, C]`` (uint8, or float in ``[0, 1]``) or a
                ``tf.data.Dataset`` of such batches.
            batch_size: images converted at a time (arrays only).

        Returns:
            The mean ``[C]`` (NumPy float32).
        """
        check_int(batch_size, "batch_size", fix="pass e.g. 256.")
        if isinstance(data, tf.data.Dataset):
            batches = (batch for batch in data)
        else:
            check_image_batch(data, self.image_shape)
            batches = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
        total, count = np.zeros(self.image_shape[-1], np.float64), 0
        for batch in batches:
            batch = to_float_images(batch).numpy()
            total += batch.sum(axis=(0, 1, 2), dtype=np.float64)
            count += int(np.prod(batch.shape[:3]))
        if not count:
            raise ValueError(
                "`data` holds no images; received an empty array or dataset. Fix: pass the "
                "training images."
            )
        mean = (total / count).astype(np.float32)
        self.fill.assign(mean)
        return mean

    def make_context(self, images, masks):
        """The encoder's input ``B * x + (1 - B) * fill``: the hole holds the fill value."""
        return fill_holes(images, masks, self.fill)

    def reconstruct(self, images, seed=(0, 0)):
        """Masks and inpaints ``images`` in inference mode.

        Args:
            images: ``[batch, H, W, C]`` uint8 or float in ``[0, 1]``.
            seed: ``[2]`` seed of random masks.

        Returns:
            ``(masks, predictions, inpainted)`` float32 NumPy arrays: ``B`` ``[batch, H, W, 1]``,
            ``F(context)`` (the context is ``make_context``, the hole holding the fill value)
            and ``B * x + (1 - B) * F(context)``.
        """
        images = to_float_images(images)
        check_image_batch(images, self.image_shape)
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
        masks = masks_lib.make_masks(
            self.mask, tf.shape(images)[0], self.image_shape, seed, self._region_source
        )
        predictions, _ = self.inpaint(images, masks, False)
        inpainted = fill_holes(images, masks, predictions)
        return masks.numpy(), predictions.numpy(), inpainted.numpy()

    def reconstruction_error(self, images, batch_size=256, seed=0):
        """Mean squared error per missing value on held-out images (inside the hole only: an
        evaluation measure, without the training loss's overlap border).

        Args:
            images: ``[N, H, W, C]`` uint8 or float in ``[0, 1]``.
            batch_size: images per forward pass.
            seed: int seed of random masks (batch ``i`` uses ``(seed, i)``).

        Returns:
            A float: ``sum((1 - B) * (x - F(B * x))^2) / sum((1 - B) * C)`` over all images.
        """
        check_int(batch_size, "batch_size", fix="pass e.g. 256.")
        check_image_batch(images, self.image_shape)
        total, count = 0.0, 0.0
        for index, start in enumerate(range(0, len(images), batch_size)):
            batch = to_float_images(images[start : start + batch_size]).numpy()
            masks, predictions, _ = self.reconstruct(batch, canonical_seed([seed, index]))
            holes = 1.0 - masks
            total += float(np.sum(holes * np.square(batch - predictions)))
            count += float(np.sum(holes)) * batch.shape[-1]
        return total / max(count, 1.0)

    def get_config(self):
        region_masks = self.region_masks
        if region_masks is not None:
            region_masks = np.asarray(region_masks).astype(int).tolist()
        fill_value = self.fill_value
        if fill_value is not None and not isinstance(fill_value, (int, float)):
            fill_value = [float(v) for v in np.asarray(fill_value).reshape(-1)]
        return {
            **super().get_config(),
            "mask": self.mask,
            "region_masks": region_masks,
            "fill_value": fill_value,
        }


def _numbers(value):
    """True for a real number or a flat sequence of them (no bools, strings or nesting)."""
    if isinstance(value, (bool, str)):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    try:
        values = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return values.ndim == 1 and values.dtype.kind in "iuf"
