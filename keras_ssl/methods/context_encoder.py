"""Context encoder: learn features by inpainting masked image regions, with an adversarial loss."""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.augment.seeds import canonical_seed
from keras_ssl.backbones.decoder import ConvDecoder
from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.methods.autoencoder import check_batch_size
from keras_ssl.methods.base import SSLMethod
from keras_ssl.methods.step_random import new_seed, step_seed, this_replica_rows
from keras_ssl.pretext import masks as masks_lib


def masked_reconstruction_loss(images, predictions, masks):
    """Per-example squared error inside the dropped region, ``||(1 - B) * (x - F(B * x))||^2``
    divided by the number of dropped values (the mean squared error over the missing pixels).

    Args:
        images: original images ``[batch, H, W, C]``.
        predictions: the decoder's images ``[batch, H, W, C]``.
        masks: ``B`` ``[batch, H, W, 1]``, 1 = kept (context), 0 = dropped.

    Returns:
        float32 ``[batch]`` (0 for an image with nothing dropped).

    References:
        Pathak et al. 2016, "Context Encoders: Feature Learning by Inpainting", eq. (1),
        https://arxiv.org/abs/1604.07379
    """
    images, predictions = tf.cast(images, tf.float32), tf.cast(predictions, tf.float32)
    holes = 1.0 - tf.cast(masks, tf.float32)
    squared = tf.reduce_sum(holes * tf.square(images - predictions), axis=[1, 2, 3])
    count = tf.reduce_sum(holes, axis=[1, 2, 3]) * tf.cast(tf.shape(images)[-1], tf.float32)
    return tf.math.divide_no_nan(squared, count)


def discriminator_loss(real_logits, fake_logits):
    """Per-example GAN discriminator loss ``-[log D(x) + log(1 - D(x_fake))]`` from logits."""
    real = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(real_logits), real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(fake_logits), fake_logits)
    return tf.reduce_sum(real + fake, axis=-1)


def generator_adversarial_loss(fake_logits):
    """Per-example non-saturating generator loss ``-log D(x_fake)`` from logits."""
    losses = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(fake_logits), fake_logits)
    return tf.reduce_sum(losses, axis=-1)


def ConvDiscriminator(image_shape, widths=(32, 64), name="discriminator"):
    """A small DCGAN-style discriminator: stride-2 4x4 convolutions with LeakyReLU(0.2) and a
    linear layer to one logit. No BatchNorm, so its statistics never mix real and inpainted
    images and replicas need no synchronisation."""
    images = keras.Input(image_shape, name="images")
    x = images
    for index, filters in enumerate(widths):
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", name=f"{name}_conv{index}")(
            x
        )
        x = keras.layers.LeakyReLU(0.2, name=f"{name}_lrelu{index}")(x)
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    logits = keras.layers.Dense(1, name=f"{name}_logit")(x)
    return keras.Model(images, logits, name=name)


@keras.saving.register_keras_serializable(package="keras_ssl")
class ContextEncoder(SSLMethod):
    """Context encoder (Pathak et al. 2016, "Context Encoders: Feature Learning by Inpainting",
    https://arxiv.org/abs/1604.07379).

    A binary mask ``B`` (1 = kept) drops part of each image: the central square, random blocks
    covering about a quarter of the image, or random regions from a mask source (the paper's
    choice for feature learning). The encoder f codes the context ``B * x`` and a
    ``ConvDecoder`` F predicts the image; the generator minimises
    ``lambda_rec * ||(1 - B) * (x - F(B * x))||^2 + lambda_adv * L_adv`` (squared error per
    missing value; non-saturating ``L_adv = -log D(x_hat)``) while a small conv discriminator D
    learns to tell real images ``x`` from inpainted ones ``x_hat = B * x + (1 - B) * F(B * x)``
    (``-[log D(x) + log(1 - D(x_hat))]``). Each ``train_step`` first updates D with its own
    optimizer, then the encoder and decoder against the updated D (alternating updates as in
    DCGAN). ``adversarial_weight=0`` trains with the reconstruction loss alone and never
    updates D. The encoder is the representation (``export_encoder``).

    Random masks are drawn from ``seed`` and the optimizer's step count for the whole global
    batch and sliced per replica; all terms are per-example means, so N replicas match one.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` codes).
        augmenter: view generator; default ``presets.identity``.
        mask: ``"random_region"`` (paper's feature learning), ``"random_blocks"`` or
            ``"central"``.
        region_masks: mask source for ``"random_region"``, ``[M, H, W]`` with 1 = region to
            drop (e.g. segmentation masks); ``None`` uses ``pretext.masks.blob_regions``.
        reconstruction_weight: ``lambda_rec`` (paper: 0.999).
        adversarial_weight: ``lambda_adv`` (paper: 0.001); 0 switches the adversarial term off.
        decoder_widths: channels of the decoder's upsampling stages, coarse to fine.
        discriminator_widths: channels of the discriminator's stride-2 convolutions.
        synchronized_bn: synchronise the decoder's BatchNorm across replicas.
        seed: int seed of the random masks (``None``: random); kept in a variable.
        probe_classes: classes of the online linear probe (fed the codes of the context).
    """

    loss_terms = ("loss", "reconstruction_loss", "adversarial_loss", "discriminator_loss")

    def __init__(
        self,
        encoder,
        augmenter=None,
        mask="random_region",
        region_masks=None,
        reconstruction_weight=0.999,
        adversarial_weight=0.001,
        decoder_widths=(64, 32),
        discriminator_widths=(32, 64),
        synchronized_bn=False,
        seed=None,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(encoder, augmenter=augmenter, probe_classes=probe_classes, **kwargs)
        masks_lib.check_mask_kind(mask)
        for name, value in (
            ("reconstruction_weight", reconstruction_weight),
            ("adversarial_weight", adversarial_weight),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(
                    f"`{name}` must be a number >= 0; received {value!r}. Fix: use the paper's "
                    "reconstruction_weight=0.999, adversarial_weight=0.001 (0 turns it off)."
                )
        self.mask = mask
        self.region_masks = region_masks
        self.reconstruction_weight = reconstruction_weight
        self.adversarial_weight = adversarial_weight
        self.decoder_widths = tuple(decoder_widths)
        self.discriminator_widths = tuple(discriminator_widths)
        self.synchronized_bn = synchronized_bn
        self.seed = seed
        self._region_source = self._check_region_masks(region_masks)
        self.decoder = ConvDecoder(
            self.feature_dim,
            self.image_shape,
            widths=self.decoder_widths,
            synchronized_bn=synchronized_bn,
            name="decoder",
        )
        self.discriminator = ConvDiscriminator(self.image_shape, self.discriminator_widths)
        self.discriminator_optimizer = None
        self.mask_seed = self.add_weight(
            shape=(2,),
            dtype="int32",
            initializer=keras.initializers.Constant(new_seed(seed)),
            trainable=False,
            name="mask_seed",
        )
        self.build()

    def _check_region_masks(self, region_masks):
        if self.mask != "random_region":
            return None
        if region_masks is None:
            return masks_lib.blob_regions(self.image_shape)
        source = np.asarray(region_masks)
        if source.ndim == 4 and source.shape[-1] == 1:
            source = source[..., 0]
        if source.ndim != 3 or source.shape[1:] != self.image_shape[:2] or not len(source):
            raise ValueError(
                f"`region_masks` must be [M, {self.image_shape[0]}, {self.image_shape[1]}] "
                f"(1 = region to drop); received shape {source.shape}. Fix: resize the masks "
                "to the image size, or pass None for synthetic blob regions."
            )
        return source.astype(np.uint8)

    def default_augmenter(self):
        from keras_ssl.augment import presets

        return presets.identity(self.image_shape)

    # ------------------------------------------------------------------------ optimizers
    def compile(self, optimizer="rmsprop", discriminator_optimizer=None, **kwargs):
        """``keras.Model.compile`` plus the discriminator's optimizer.

        Args:
            optimizer: the encoder and decoder's optimizer.
            discriminator_optimizer: the discriminator's optimizer; ``None`` uses a fresh copy
                of ``optimizer`` (same class and settings, its own slots).
            **kwargs: the other ``keras.Model.compile`` arguments.
        """
        super().compile(optimizer=optimizer, **kwargs)
        if discriminator_optimizer is None:
            discriminator_optimizer = keras.optimizers.deserialize(
                keras.optimizers.serialize(self.optimizer)
            )
        self.discriminator_optimizer = keras.optimizers.get(discriminator_optimizer)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config and self.discriminator_optimizer is not None:
            config["discriminator_optimizer"] = keras.saving.serialize_keras_object(
                self.discriminator_optimizer
            )
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self._build_optimizers()

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        self._build_optimizers()

    def _build_optimizers(self):
        with self.distribute_strategy.scope():
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self._generator_variables())
            optimizer = self.discriminator_optimizer
            if optimizer is not None and not optimizer.built:
                optimizer.build(self.discriminator.trainable_variables)

    def _generator_variables(self):
        excluded = {id(v) for v in self.discriminator.trainable_variables}
        return [v for v in self.trainable_variables if id(v) not in excluded]

    # ----------------------------------------------------------------------------- steps
    def make_masks(self, local_batch, seed):
        """Masks ``B`` ``[local_batch, H, W, 1]`` (1 = kept) for this replica's images."""
        everyone = masks_lib.make_masks(
            self.mask,
            local_batch * distribute.num_replicas(),
            self.image_shape,
            seed,
            self._region_source,
        )
        return this_replica_rows(everyone, local_batch)

    def inpaint(self, images, masks, training):
        """Returns ``(predictions, codes)``: ``F(B * x)`` and ``f(B * x)``."""
        context = images * masks
        codes = self.encoder(context, training=training)
        predictions = tf.cast(self.decoder(codes, training=training), tf.float32)
        return predictions, codes

    def _generator_terms(self, images, masks, training):
        predictions, codes = self.inpaint(images, masks, training)
        reconstruction = tf.reduce_mean(masked_reconstruction_loss(images, predictions, masks))
        inpainted = masks * images + (1.0 - masks) * predictions
        return reconstruction, inpainted, codes

    def _discriminator_loss(self, images, inpainted, training):
        real = tf.cast(self.discriminator(images, training=training), tf.float32)
        fake = tf.cast(self.discriminator(inpainted, training=training), tf.float32)
        return tf.reduce_mean(discriminator_loss(real, fake))

    def _adversarial_loss(self, inpainted, training):
        fake = tf.cast(self.discriminator(inpainted, training=training), tf.float32)
        return tf.reduce_mean(generator_adversarial_loss(fake))

    def compute_ssl_loss(self, views, training):
        images = views[0]
        masks = self.make_masks(tf.shape(images)[0], step_seed(self, self.mask_seed, training))
        reconstruction, inpainted, codes = self._generator_terms(images, masks, training)
        zero = tf.zeros([], tf.float32)
        adversarial, critic = zero, zero
        if self.adversarial_weight:
            adversarial = self._adversarial_loss(inpainted, training)
            critic = self._discriminator_loss(images, tf.stop_gradient(inpainted), training)
        terms = {
            "loss": self.reconstruction_weight * reconstruction
            + self.adversarial_weight * adversarial,
            "reconstruction_loss": reconstruction,
            "adversarial_loss": adversarial,
            "discriminator_loss": critic,
        }
        return terms, codes

    def train_step(self, data):
        views, labels = self.unpack_batch(data)
        images = views[0]
        masks = self.make_masks(tf.shape(images)[0], step_seed(self, self.mask_seed, True))
        replicas = distribute.num_replicas()
        generator_variables = self._generator_variables()
        zero = tf.zeros([], tf.float32)
        adversarial, critic = zero, zero
        with tf.GradientTape() as tape:
            reconstruction, inpainted, codes = self._generator_terms(images, masks, True)
            total = self.reconstruction_weight * reconstruction
            if self.adversarial_weight:
                with tape.stop_recording():
                    critic = self._update_discriminator(images, tf.stop_gradient(inpainted))
                adversarial = self._adversarial_loss(inpainted, True)
                total = total + self.adversarial_weight * adversarial
            loss = total
            if self.probe is not None and labels is not None:
                total = total + self._probe_update(codes, labels)
            scaled = self.optimizer.scale_loss(total / replicas)
        gradients = tape.gradient(scaled, generator_variables)
        pairs = [(g, v) for g, v in zip(gradients, generator_variables) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        self.after_optimizer_step()
        self._update_loss_trackers(
            {
                "loss": loss,
                "reconstruction_loss": reconstruction,
                "adversarial_loss": adversarial,
                "discriminator_loss": critic,
            }
        )
        return self._step_logs()

    def _update_discriminator(self, images, inpainted):
        optimizer = self.discriminator_optimizer
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            critic = self._discriminator_loss(images, inpainted, True)
            scaled = optimizer.scale_loss(critic / distribute.num_replicas())
        optimizer.apply(tape.gradient(scaled, variables), variables)
        return critic

    # ------------------------------------------------------------------------ evaluation
    def reconstruct(self, images, seed=(0, 0)):
        """Masks and inpaints ``images`` in inference mode.

        Args:
            images: ``[batch, H, W, C]`` uint8 or float in ``[0, 1]``.
            seed: ``[2]`` seed of random masks.

        Returns:
            ``(masks, predictions, inpainted)`` float32 NumPy arrays: ``B`` ``[batch, H, W, 1]``,
            ``F(B * x)`` and ``B * x + (1 - B) * F(B * x)``.
        """
        images = to_float_images(images)
        check_image_batch(images, self.image_shape)
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
        masks = masks_lib.make_masks(
            self.mask, tf.shape(images)[0], self.image_shape, seed, self._region_source
        )
        predictions, _ = self.inpaint(images, masks, False)
        inpainted = masks * images + (1.0 - masks) * predictions
        return masks.numpy(), predictions.numpy(), inpainted.numpy()

    def reconstruction_error(self, images, batch_size=256, seed=0):
        """Mean squared error per missing value on held-out images (inside the masked region).

        Args:
            images: ``[N, H, W, C]`` uint8 or float in ``[0, 1]``.
            batch_size: images per forward pass.
            seed: int seed of random masks (batch ``i`` uses ``(seed, i)``).

        Returns:
            A float: ``sum((1 - B) * (x - F(B * x))^2) / sum((1 - B) * C)`` over all images.
        """
        check_batch_size(batch_size)
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
        return {
            **super().get_config(),
            "mask": self.mask,
            "region_masks": region_masks,
            "reconstruction_weight": self.reconstruction_weight,
            "adversarial_weight": self.adversarial_weight,
            "decoder_widths": self.decoder_widths,
            "discriminator_widths": self.discriminator_widths,
            "synchronized_bn": self.synchronized_bn,
            "seed": self.seed,
        }
