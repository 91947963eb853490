"""Denoising autoencoder (and the plain one): reconstruct clean images from corrupted ones."""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.augment.seeds import canonical_seed
from keras_ssl.backbones.decoder import ConvDecoder
from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.losses.reconstruction import reconstruction_loss
from keras_ssl.methods.base import SSLMethod
from keras_ssl.methods.step_random import new_seed, step_seed, this_replica_rows
from keras_ssl.pretext.noise import check_noise, corrupt
from keras_ssl.validation import check_int

RECONSTRUCTION_LOSSES = ("mse", "bce")


@keras.saving.register_keras_serializable(package="keras_ssl")
class DenoisingAutoencoder(SSLMethod):
    """Denoising autoencoder (Vincent et al. 2008, "Extracting and Composing Robust Features
    with Denoising Autoencoders", ICML, https://doi.org/10.1145/1390156.1390294; the noise
    types of Vincent et al. 2010, JMLR, https://jmlr.org/papers/v11/vincent10a.html).

    Each image ``x`` is corrupted to ``x~`` (masking noise: a random fraction of components set
    to 0; Gaussian noise; salt-and-pepper noise), encoded by the encoder f into a code
    ``[batch, D]`` and decoded by a DCGAN-style ``ConvDecoder`` g back to an image; the loss is
    the reconstruction error of the CLEAN image, ``l(x, g(f(x~)))`` (binary cross-entropy, the
    paper's loss for inputs in ``[0, 1]``, or squared error). ``noise=None`` is the plain
    autoencoder. The encoder is the representation (``export_encoder``).

    Corruption is drawn inside the step from ``seed`` and the optimizer's step count for the
    whole global batch and sliced per replica, so N replicas see exactly the corruption of one
    device; every term is a per-example mean, so the replica mean is the global-batch loss.
    The online probe (if any) sees the codes of the corrupted images.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` codes).
        augmenter: view generator; default ``presets.identity`` (one view, no augmentation).
        noise: ``"masking"`` (the 2008 paper), ``"gaussian"``, ``"salt_and_pepper"`` or ``None``.
        noise_amount: the fraction of corrupted components (masking, salt-and-pepper; the
            paper uses 10-40%) or the Gaussian standard deviation.
        reconstruction_loss: ``"bce"`` (the paper's cross-entropy; the decoder outputs logits)
            or ``"mse"`` (the decoder ends with a sigmoid).
        decoder_widths: channels of the decoder's 2x upsampling stages, coarse to fine.
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        seed: int seed of the corruption (``None``: random); kept in a variable, so checkpoints
            and ``.keras`` files restore it.
        probe_classes: classes of the online linear probe, or ``None``.
    """

    default_preset = "identity"

    def __init__(
        self,
        encoder,
        augmenter=None,
        noise="masking",
        noise_amount=0.25,
        reconstruction_loss="bce",
        decoder_widths=(64, 32),
        synchronized_bn=None,
        seed=None,
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
        check_noise(noise, noise_amount)
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"`reconstruction_loss` must be one of {RECONSTRUCTION_LOSSES}; received "
                f"{reconstruction_loss!r}. Fix: pass 'bce' for images in [0, 1] or 'mse'."
            )
        self.noise = noise
        self.noise_amount = noise_amount
        self.reconstruction_loss = reconstruction_loss
        self.decoder_widths = tuple(decoder_widths)
        self.seed = seed
        self.decoder = ConvDecoder(
            self.feature_dim,
            self.image_shape,
            widths=self.decoder_widths,
            output_activation="sigmoid" if reconstruction_loss == "mse" else None,
            synchronized_bn=self.batch_norm_synchronized,
            name="decoder",
        )
        self.noise_seed = self.add_weight(
            shape=(2,),
            dtype="int32",
            initializer=keras.initializers.Constant(new_seed(seed)),
            trainable=False,
            name="noise_seed",
        )

    def corrupt(self, images, seed):
        """Corrupts ``images`` (float, this replica's rows) with the method's noise.

        The noise is drawn for the global batch from ``seed`` and sliced to this replica.
        """
        if self.noise is None:
            return tf.cast(images, tf.float32)
        everyone = distribute.gather(images)
        noisy = corrupt(everyone, self.noise, self.noise_amount, seed)
        return this_replica_rows(noisy, tf.shape(images)[0])

    def _outputs(self, images, seed, training):
        corrupted = self.corrupt(images, seed)
        codes = self.encoder(corrupted, training=training)
        outputs = tf.cast(self.decoder(codes, training=training), tf.float32)
        return corrupted, codes, outputs

    def _predictions(self, outputs):
        return tf.sigmoid(outputs) if self.reconstruction_loss == "bce" else outputs

    def compute_ssl_loss(self, views, training):
        images = views[0]
        _, codes, outputs = self._outputs(
            images, step_seed(self, self.noise_seed, training), training
        )
        losses = reconstruction_loss(images, outputs, self.reconstruction_loss)
        return {"loss": tf.reduce_mean(losses)}, codes

    def reconstruct(self, images, seed=(0, 0)):
        """Corrupts and reconstructs ``images`` in inference mode.

        Args:
            images: ``[batch, H, W, C]`` uint8 or float in ``[0, 1]``.
            seed: ``[2]`` seed of the corruption.

        Returns:
            ``(corrupted, reconstructions)`` float32 NumPy arrays, like ``images``.
        """
        images = to_float_images(images)
        check_image_batch(images, self.image_shape)
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
        corrupted, _, outputs = self._outputs(images, seed, False)
        return corrupted.numpy(), self._predictions(outputs).numpy()

    def reconstruction_error(self, images, batch_size=256, seed=0):
        """Mean per-pixel squared error of the reconstructions of (corrupted) held-out images.

        Args:
            images: ``[N, H, W, C]`` uint8 or float in ``[0, 1]``.
            batch_size: images per forward pass.
            seed: int seed of the corruption (batch ``i`` uses ``(seed, i)``).

        Returns:
            A float: the mean over images, pixels and channels of ``(x - x_hat)^2``.
        """
        check_int(batch_size, "batch_size", fix="pass e.g. 256.")
        check_image_batch(images, self.image_shape)
        total, count = 0.0, 0
        for index, start in enumerate(range(0, len(images), batch_size)):
            batch = to_float_images(images[start : start + batch_size])
            _, predictions = self.reconstruct(batch, canonical_seed([seed, index]))
            total += float(np.sum(np.square(batch.numpy() - predictions)))
            count += int(np.prod(predictions.shape))
        return total / count

    def get_config(self):
        return {
            **super().get_config(),
            "noise": self.noise,
            "noise_amount": self.noise_amount,
            "reconstruction_loss": self.reconstruction_loss,
            "decoder_widths": self.decoder_widths,
            "seed": self.seed,
        }
