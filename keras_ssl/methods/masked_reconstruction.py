"""Evaluation of a masked autoencoder: reconstructions to look at and the held-out loss."""

import tensorflow as tf

from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.layers.patch_masking import paste_masked_patches, patchify
from keras_ssl.losses.masked_patches import denormalize_patches
from keras_ssl.validation import check_int


class MaskedReconstruction:
    """``reconstruct`` and ``reconstruction_error`` of a masked-patch method (``methods.MAE``).

    A mixin of an ``SSLMethod`` that has ``image_shape``, ``patch_size``, ``norm_pix_loss``,
    ``predict_patches(images, seed, training)`` (the decoder's patches and the mask) and
    ``patch_losses(images, seed, training)`` (the per-image training loss).
    """

    def reconstruct(self, images, seed=(0, 0)):
        """Masks and reconstructs ``images`` in inference mode.

        With ``norm_pix_loss`` the decoder predicts normalised pixels; for display each
        predicted patch is mapped back with the ORIGINAL patch's mean and standard deviation
        (as the paper's visualisations do), so the pictures use that much of the hidden patch.

        Args:
            images: ``[batch, H, W, C]`` uint8 or float in ``[0, 1]``.
            seed: ``[2]`` seed of the masks.

        Returns:
            ``(masks, predictions, reconstructions)`` float32 NumPy arrays: ``masks``
            ``[batch, H, W, 1]`` (1 = visible pixel), the decoder's image ``[batch, H, W, C]``
            and the visible pixels with the predicted masked patches pasted in.
        """
        images = to_float_images(images)
        check_image_batch(images, self.image_shape)
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
        predictions, mask, _ = self.predict_patches(images, seed, False)
        target = patchify(images, self.patch_size)
        if self.norm_pix_loss:
            predictions = denormalize_patches(predictions, target)
        images = paste_masked_patches(target, predictions, mask, self.patch_size, self.image_shape)
        return tuple(x.numpy() for x in images)

    def reconstruction_error(self, images, batch_size=256, seed=0):
        """The training loss (masked patches, normalised targets when ``norm_pix_loss``) on
        held-out ``images`` in inference mode, averaged over images.

        Args:
            images: ``[N, H, W, C]`` uint8 or float in ``[0, 1]``.
            batch_size: images per forward pass.
            seed: int seed of the masks (batch ``i`` uses ``(seed, i)``).
        """
        check_int(batch_size, "batch_size", fix="pass e.g. 256.")
        check_image_batch(images, self.image_shape)
        total, count = 0.0, 0
        for index, start in enumerate(range(0, len(images), batch_size)):
            batch = to_float_images(images[start : start + batch_size])
            seed_pair = tf.constant([int(seed) % (2**31 - 1), index], tf.int32)
            losses, _ = self.patch_losses(batch, seed_pair, False)
            total += float(tf.reduce_sum(losses))
            count += int(losses.shape[0])
        return total / max(count, 1)
