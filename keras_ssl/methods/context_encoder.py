"""Context encoder: learn features by inpainting masked image regions, with an adversarial loss."""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.augment.seeds import canonical_seed
from keras_ssl.backbones.decoder import ConvDecoder
from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.layers.discriminators import ConvDiscriminator
from keras_ssl.losses.adversarial import discriminator_loss, generator_adversarial_loss
from keras_ssl.losses.reconstruction import masked_reconstruction_loss
from keras_ssl.methods.adversarial import AdversarialMethod, apply_gradients
from keras_ssl.methods.step_random import new_seed, step_seed, this_replica_rows
from keras_ssl.pretext import masks as masks_lib
from keras_ssl.validation import check_in_range, check_int

#: The paper's fill value: the ImageNet mean, (117, 104, 123) / 255 per RGB channel
#: (released code, ``train.lua``: ``2*117/255-1`` etc. in its [-1, 1] scale).
IMAGENET_MEAN = (117 / 255, 104 / 255, 123 / 255)
#: Its grey value for one-channel images: ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B.
IMAGENET_MEAN_GREY = (0.299 * 117 + 0.587 * 104 + 0.114 * 123) / 255


@keras.saving.register_keras_serializable(package="keras_ssl")
class ContextEncoder(AdversarialMethod):
    """Context encoder (Pathak et al. 2016, "Context Encoders: Feature Learning by Inpainting",
    https://arxiv.org/abs/1604.07379; released code pathak22/context-encoder).

    A binary mask ``B`` (1 = kept) drops part of each image: the central square, random blocks
    covering about a quarter of the image, or random regions from a mask source (the paper's
    choice for feature learning). The dropped pixels are filled with a constant mean value
    (``fill_value``), so the encoder f codes ``B * x + (1 - B) * mean`` and a ``ConvDecoder``
    F predicts the image. As in the paper and its released ``train.lua`` the generator predicts
    a region slightly larger than the hole, ``R`` = the hole plus a border of ``overlap``
    context pixels, and minimises ``lambda_rec * L_rec + lambda_adv * L_adv``: ``L_rec`` the
    squared error over ``R`` with the border's errors weighted ``overlap_weight`` (10x), per
    value of ``R`` (``masked_reconstruction_loss``); ``L_adv = -log D(F_R)`` (non-saturating).
    The discriminator D judges the predicted region, real ``x_R`` against predicted ``F_R``
    (``-[log D(x_R) + log(1 - D(F_R))]``), never the composite image:

    - ``"central"``: ``R`` is the static rectangle of the hole grown by ``overlap`` on each side
      (``pretext.masks.central_box``), and D sees that crop, as ``netD`` sees the 64x64 centre
      in ``train.lua``;
    - ``"random_blocks"`` / ``"random_region"``: ``R`` changes per image, so D sees the whole
      image with everything outside ``R`` set to 0, real and predicted alike (the same ``R``
      for both, so the shape of ``R`` tells D nothing). ``train_random.lua`` judges the whole
      predicted image because its L2 covers the whole image; here D judges exactly the pixels
      the reconstruction loss trains, as in ``train.lua``.

    Each ``train_step`` first updates D with its own optimizer, then the encoder and decoder
    against the updated D (alternating updates as in DCGAN and the released code).
    ``adversarial_weight=0`` trains with the reconstruction loss alone and never updates D. The
    encoder is the representation (``export_encoder``).

    ``adapt(images)`` sets the fill value to the per-channel mean of the training images (the
    paper's "dataset mean"); ``keras-ssl train`` calls it on the training split.

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
        overlap: width in pixels of the context border around the hole that is predicted too
            (released code: ``overlapPred=4``); 0 predicts the hole only (eq. (1)).
        overlap_weight: weight of the border's squared errors relative to the hole's (released
            code: ``overlapL2Weight = 10``).
        fill_value: the constant put in the dropped pixels, a float in ``[0, 1]`` or one per
            channel; ``None`` is the paper's ImageNet mean ``(117, 104, 123) / 255`` for RGB and
            its grey value (110/255, ITU-R 601 luma) for one channel. ``adapt`` replaces it by
            the data's mean; the value in use is the variable ``fill``.
        decoder_widths: channels of the decoder's upsampling stages, coarse to fine.
        discriminator_widths: channels of the discriminator's stride-2 convolutions.
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        seed: int seed of the random masks (``None``: random); kept in a variable.
        probe_classes: classes of the online linear probe (fed the codes of the context).
    """

    default_preset = "identity"

    loss_terms = ("loss", "reconstruction_loss", "adversarial_loss", "discriminator_loss")

    def __init__(
        self,
        encoder,
        augmenter=None,
        mask="random_region",
        region_masks=None,
        reconstruction_weight=0.999,
        adversarial_weight=0.001,
        overlap=4,
        overlap_weight=10.0,
        fill_value=None,
        decoder_widths=(64, 32),
        discriminator_widths=(32, 64),
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
        masks_lib.check_mask_kind(mask)
        for name, value in (
            ("reconstruction_weight", reconstruction_weight),
            ("adversarial_weight", adversarial_weight),
            ("overlap_weight", overlap_weight),
        ):
            check_in_range(
                value,
                name,
                0,
                fix="use the paper's reconstruction_weight=0.999, adversarial_weight=0.001 (0 "
                "turns it off) and the released code's overlap_weight=10.",
            )
        masks_lib.check_overlap(overlap)
        self.mask = mask
        self.region_masks = region_masks
        self.reconstruction_weight = reconstruction_weight
        self.adversarial_weight = adversarial_weight
        self.overlap = int(overlap)
        self.overlap_weight = overlap_weight
        self.fill_value = fill_value
        self.decoder_widths = tuple(decoder_widths)
        self.discriminator_widths = tuple(discriminator_widths)
        self.seed = seed
        self._region_source = self._check_region_masks(region_masks)
        self.fill = self.add_weight(
            shape=(self.image_shape[-1],),
            dtype="float32",
            initializer=keras.initializers.Constant(self._check_fill_value(fill_value)),
            trainable=False,
            name="fill",
        )
        self.decoder = ConvDecoder(
            self.feature_dim,
            self.image_shape,
            widths=self.decoder_widths,
            synchronized_bn=self.batch_norm_synchronized,
            name="decoder",
        )
        self.discriminator = ConvDiscriminator(self.region_shape, self.discriminator_widths)
        self.mask_seed = self.add_weight(
            shape=(2,),
            dtype="int32",
            initializer=keras.initializers.Constant(new_seed(seed)),
            trainable=False,
            name="mask_seed",
        )

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

    def _check_fill_value(self, fill_value):
        channels = self.image_shape[-1]
        if fill_value is None:
            # image_shape is already checked to have 1 or 3 channels.
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

    @property
    def region_shape(self):
        """Shape ``(h, w, C)`` of the discriminator's input, the predicted region."""
        if self.mask == "central":
            _, _, height, width = masks_lib.central_box(self.image_shape, margin=self.overlap)
            return (height, width, self.image_shape[-1])
        return self.image_shape

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

    def make_context(self, images, masks):
        """The encoder's input ``B * x + (1 - B) * fill``: the hole holds the fill value."""
        fill = tf.cast(self.fill, images.dtype)
        masks = tf.cast(masks, images.dtype)
        return images * masks + (1.0 - masks) * fill

    def inpaint(self, images, masks, training):
        """Returns ``(predictions, codes)``: ``F(context)`` and ``f(context)``."""
        codes = self.encoder(self.make_context(images, masks), training=training)
        predictions = tf.cast(self.decoder(codes, training=training), tf.float32)
        return predictions, codes

    def predicted_region(self, images, masks):
        """What the discriminator judges of ``images`` (real or predicted): the central crop
        grown by the overlap border, or (random masks) the images outside the hole and its
        border set to 0."""
        images = tf.cast(images, tf.float32)
        if self.mask == "central":
            top, left, height, width = masks_lib.central_box(self.image_shape, margin=self.overlap)
            return images[:, top : top + height, left : left + width]
        holes = 1.0 - tf.cast(masks, tf.float32)
        return images * (holes + masks_lib.overlap_border(masks, self.overlap))

    def _generator_terms(self, images, masks, training):
        """Returns ``(reconstruction, real_region, fake_region, codes)``."""
        predictions, codes = self.inpaint(images, masks, training)
        reconstruction = tf.reduce_mean(
            masked_reconstruction_loss(
                images, predictions, masks, self.overlap, self.overlap_weight
            )
        )
        real = self.predicted_region(images, masks)
        fake = self.predicted_region(predictions, masks)
        return reconstruction, real, fake, codes

    def _discriminator_loss(self, real, fake, training):
        real_logits = tf.cast(self.discriminator(real, training=training), tf.float32)
        fake_logits = tf.cast(self.discriminator(fake, training=training), tf.float32)
        return tf.reduce_mean(discriminator_loss(real_logits, fake_logits))

    def _adversarial_loss(self, fake, training):
        logits = tf.cast(self.discriminator(fake, training=training), tf.float32)
        return tf.reduce_mean(generator_adversarial_loss(logits))

    def compute_ssl_loss(self, views, training):
        images = views[0]
        masks = self.make_masks(tf.shape(images)[0], step_seed(self, self.mask_seed, training))
        reconstruction, real, fake, codes = self._generator_terms(images, masks, training)
        zero = tf.zeros([], tf.float32)
        adversarial, critic = zero, zero
        if self.adversarial_weight:
            adversarial = self._adversarial_loss(fake, training)
            critic = self._discriminator_loss(real, tf.stop_gradient(fake), training)
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
        generator_variables, _ = self.player_variables()
        zero = tf.zeros([], tf.float32)
        adversarial, critic = zero, zero
        with tf.GradientTape() as tape:
            reconstruction, real, fake, codes = self._generator_terms(images, masks, True)
            total = self.reconstruction_weight * reconstruction
            if self.adversarial_weight:
                with tape.stop_recording():
                    critic = self._update_discriminator(real, tf.stop_gradient(fake))
                adversarial = self._adversarial_loss(fake, True)
                total = total + self.adversarial_weight * adversarial
            loss = total
            if self.probe is not None and labels is not None:
                total = total + self._probe_update(codes, labels)
            scaled = self.optimizer.scale_loss(total / replicas)
        gradients = tape.gradient(scaled, generator_variables)
        apply_gradients(self.optimizer, gradients, generator_variables)
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

    def _update_discriminator(self, real, fake):
        optimizer = self.discriminator_optimizer
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            critic = self._discriminator_loss(real, fake, True)
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
        inpainted = masks * images + (1.0 - masks) * predictions
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
            "reconstruction_weight": self.reconstruction_weight,
            "adversarial_weight": self.adversarial_weight,
            "overlap": self.overlap,
            "overlap_weight": self.overlap_weight,
            "fill_value": fill_value,
            "decoder_widths": self.decoder_widths,
            "discriminator_widths": self.discriminator_widths,
            "seed": self.seed,
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
