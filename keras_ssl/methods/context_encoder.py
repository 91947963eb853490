"""Context encoder: learn features by inpainting masked image regions, with an adversarial loss."""

import keras
import tensorflow as tf

from keras_ssl.backbones.decoder import ConvDecoder
from keras_ssl.layers.discriminators import ConvDiscriminator
from keras_ssl.losses.adversarial import discriminator_loss, generator_adversarial_loss
from keras_ssl.losses.reconstruction import masked_reconstruction_loss
from keras_ssl.methods.adversarial import AdversarialMethod
from keras_ssl.methods.inpainting import HoleFilling
from keras_ssl.methods.step_random import new_seed, step_seed
from keras_ssl.pretext import masks as masks_lib
from keras_ssl.validation import check_in_range


@keras.saving.register_keras_serializable(package="keras_ssl")
class ContextEncoder(HoleFilling, AdversarialMethod):
    """Context encoder (Pathak et al. 2016, "Context Encoders: Feature Learning by Inpainting",
    https://arxiv.org/abs/1604.07379; released code pathak22/context-encoder).

    A binary mask ``B`` (1 = kept) drops part of each image: the central square, random blocks
    covering about a quarter of the image, or random regions from a mask source (the paper's
    choice for feature learning). The dropped pixels are filled with a constant mean value
    (``fill_value``), so the encoder f codes ``B * x + (1 - B) * mean`` and a ``ConvDecoder``
    F predicts the image. As in the paper and its released ``train.lua`` the generator predicts
    a region slightly larger than the hole, ``R`` = the hole plus a border of ``overlap``
    context pixels, and minimises ``lambda_rec * L_rec + lambda_adv * L_adv``: ``L_rec`` the
    squared error over ``R`` with the border's errors weighted ``overlap_weight`` (10x)
    (``losses.masked_reconstruction_loss``); ``L_adv = -log D(F_R)`` (non-saturating). The
    discriminator D judges the predicted region, real ``x_R`` against predicted ``F_R``
    (``-[log D(x_R) + log(1 - D(F_R))]``), never the composite image: the static crop of
    ``R`` for ``"central"`` masks, the image with everything outside ``R`` set to 0 for random
    ones (``pretext.masks.predicted_region``). ``train_random.lua`` judges the whole predicted
    image because its L2 covers the whole image; here D judges exactly the pixels the
    reconstruction loss trains, as in ``train.lua``.

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
        synchronized_bn: global BatchNorm in the encoder and decoder (see :class:`SSLMethod`).
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
        self.setup_holes(mask, region_masks, fill_value)
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
        self.reconstruction_weight = reconstruction_weight
        self.adversarial_weight = adversarial_weight
        self.overlap = int(overlap)
        self.overlap_weight = overlap_weight
        self.decoder_widths = tuple(decoder_widths)
        self.discriminator_widths = tuple(discriminator_widths)
        self.seed = seed
        self.decoder = ConvDecoder(
            self.feature_dim,
            self.image_shape,
            widths=self.decoder_widths,
            synchronized_bn=self.batch_norm_synchronized,
            name="decoder",
        )
        region = masks_lib.region_shape(mask, self.image_shape, self.overlap)
        self.discriminator = ConvDiscriminator(region, self.discriminator_widths)
        self.mask_seed = self.add_weight(
            shape=(2,),
            dtype="int32",
            initializer=keras.initializers.Constant(new_seed(seed)),
            trainable=False,
            name="mask_seed",
        )

    # ----------------------------------------------------------------------------- steps
    def inpaint(self, images, masks, training):
        """Returns ``(predictions, codes)``: ``F(context)`` and ``f(context)``."""
        codes = self.encoder(self.make_context(images, masks), training=training)
        predictions = tf.cast(self.decoder(codes, training=training), tf.float32)
        return predictions, codes

    def _judge(self, regions, training):
        return tf.cast(self.discriminator(regions, training=training), tf.float32)

    def compute_ssl_loss(self, views, training, tape=None):
        """The loss terms; with ``tape`` (a training step) D takes its step on its loss before
        the adversarial term is computed against the updated D."""
        images = views[0]
        masks = self.make_masks(tf.shape(images)[0], step_seed(self, self.mask_seed, training))
        predictions, codes = self.inpaint(images, masks, training)
        reconstruction = tf.reduce_mean(
            masked_reconstruction_loss(
                images, predictions, masks, self.overlap, self.overlap_weight
            )
        )
        adversarial = critic = tf.zeros([], tf.float32)
        if self.adversarial_weight:
            real = masks_lib.predicted_region(images, masks, self.mask, self.overlap)
            fake = masks_lib.predicted_region(predictions, masks, self.mask, self.overlap)
            critic = tf.reduce_mean(
                discriminator_loss(
                    self._judge(real, training), self._judge(tf.stop_gradient(fake), training)
                )
            )
            if tape is not None:
                self.update_discriminator(tape, critic)
            adversarial = tf.reduce_mean(generator_adversarial_loss(self._judge(fake, training)))
        terms = {
            "loss": self.reconstruction_weight * reconstruction
            + self.adversarial_weight * adversarial,
            "reconstruction_loss": reconstruction,
            "adversarial_loss": adversarial,
            "discriminator_loss": critic,
        }
        return terms, codes

    def train_terms(self, views, tape):
        return self.compute_ssl_loss(views, training=True, tape=tape)

    def get_config(self):
        return {
            **super().get_config(),
            "reconstruction_weight": self.reconstruction_weight,
            "adversarial_weight": self.adversarial_weight,
            "overlap": self.overlap,
            "overlap_weight": self.overlap_weight,
            "decoder_widths": self.decoder_widths,
            "discriminator_widths": self.discriminator_widths,
            "seed": self.seed,
        }
