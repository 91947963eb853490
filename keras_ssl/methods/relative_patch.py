"""RelativePatchLocation: learn features by predicting where a patch lies next to a centre patch."""

import keras
import tensorflow as tf

from keras_ssl.methods.patch_encoders import image_shape_of, patch_and_image_encoders
from keras_ssl.methods.pretext_classification import PretextClassificationMethod
from keras_ssl.methods.step_random import global_batch_draws, new_seed, step_seed
from keras_ssl.pretext import patch_pairs


@keras.saving.register_keras_serializable(package="keras_ssl")
class RelativePatchLocation(PretextClassificationMethod):
    """Context prediction (Doersch et al. 2015, "Unsupervised Visual Representation Learning by
    Context Prediction", https://arxiv.org/abs/1505.05192).

    From each image of the (lightly augmented) view a centre patch and one of its 8 neighbours
    in a 3x3 grid are cut (:mod:`keras_ssl.pretext.patch_pairs`), with a gap between cells and
    each patch shifted by a random jitter so that edges and lines continuing across patches do
    not give the answer away. The same encoder embeds both patches (one call for all patches of
    the batch); their features, concatenated (centre, neighbour), go through an MLP that
    predicts which neighbour it is (8-way softmax). Loss: mean sparse softmax cross-entropy;
    ``pretext_accuracy``: the fraction placed right. On RGB images each patch also keeps one
    random colour channel and gets faint noise in the other two (the paper's colour dropping,
    :func:`keras_ssl.pretext.patch_pairs.drop_colors`), so chromatic aberration cannot give
    the location away; grayscale images have no such shortcut. The paper's random patch
    down-sampling is not applied.

    Encoders. ``patch_encoder`` is trained on patches. ``encoder`` (what ``model(images)``, the
    probes and ``keras_ssl.export`` use, and the online probe's features) is the SAME network,
    the same layers and weights, applied to whole images. Give the backbone as an image encoder
    (``image_shape=None``; rebuilt for patches with ``patch_encoders.encoder_for_patches``, weights
    copied) or as a patch encoder with ``image_shape``.

    Randomness and replicas: each image's neighbour and jitter are drawn statelessly from
    ``seed`` and the optimizer step for the whole global batch, and each replica keeps its own
    rows, so N replicas draw what one device draws, and a resumed run continues the stream.

    Args:
        encoder: image encoder (``image_shape=None``) or patch encoder (with ``image_shape``).
        augmenter: view generator; default ``presets.crop_flip`` (one view). The first is used.
        image_shape: ``(H, W, C)`` when ``encoder`` takes patches; ``None`` otherwise.
        patch_size: patch side or ``(height, width)``; ``None``: ``3/14`` of the image side
            (6 px at 28; the paper: 96 px).
        gap: pixels between neighbouring cells; ``None``: half a patch (paper: 48 px).
        jitter: largest random shift of each patch per axis; ``None``: ``7/96`` of a patch, at
            least 1 (paper: up to 7 px). The grid needs ``3 patch + 2 gap + 2 jitter`` pixels.
        head_hidden_dims: hidden sizes of the classifier on the concatenated pair features
            (paper: fc7 of 4096 on AlexNet; scaled to 1024).
        color_drop: drop 2 of 3 colour channels of every patch (paper: on); ``None`` (default)
            does on RGB images and not on grayscale ones, where it is not defined.
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        seed: seed of the random pairs.
        probe_classes: classes of the online linear probe, or ``None``.
    """

    classifier_name = "location_classifier"

    classifier_inputs = 2  # (centre, neighbour)

    def __init__(
        self,
        encoder,
        augmenter=None,
        image_shape=None,
        patch_size=None,
        gap=None,
        jitter=None,
        head_hidden_dims=(1024,),
        color_drop=None,
        synchronized_bn=None,
        seed=0,
        probe_classes=None,
        **kwargs,
    ):
        shape = image_shape_of(encoder, image_shape)
        default_patch, default_gap, default_jitter = patch_pairs.default_patch_geometry(shape[:2])
        if patch_size is None:
            patch_size = default_patch if image_shape is None else encoder.input_shape[1:3]
        patch_size = patch_pairs.pair(patch_size, "patch_size")
        if gap is None:
            gap = tuple(p // 2 for p in patch_size) if image_shape is not None else default_gap
        gap = patch_pairs.pair(gap, "gap", allow_zero=True)
        jitter = patch_pairs.pair(default_jitter if jitter is None else jitter, "jitter", True)
        patch_pairs.patch_pair_geometry(shape[:2], patch_size, gap, jitter)
        patch_encoder, image_encoder, image_shape = patch_and_image_encoders(
            encoder, image_shape, patch_size, "RelativePatchLocation"
        )
        super().__init__(
            image_encoder,
            len(patch_pairs.NEIGHBOURS),
            augmenter=augmenter,
            head_hidden_dims=head_hidden_dims,
            synchronized_bn=synchronized_bn,
            probe_classes=probe_classes,
            **kwargs,
        )
        self.patch_encoder = patch_encoder
        self.patch_size = patch_size
        self.gap = gap
        self.jitter = jitter
        self.color_drop = _check_color_drop(color_drop, self.image_shape[-1])
        self.seed = seed

    def make_pairs(self, view, seed):
        """``(centre, neighbour, labels)``: patches ``[n, ph, pw, C]`` twice, labels ``[n]``."""
        labels, shifts = global_batch_draws(
            lambda total: patch_pairs.sample_patch_pairs(total, seed, self.jitter),
            tf.shape(view)[0],
        )
        centre, neighbour = patch_pairs.cut_patch_pairs(
            view, labels, shifts, self.patch_size, self.gap
        )
        if self.color_drop:
            keep, noise = global_batch_draws(
                lambda total: patch_pairs.sample_color_drops(
                    total, tf.random.experimental.stateless_fold_in(seed, 1), self.patch_size, 3
                ),
                tf.shape(view)[0],
            )
            centre = patch_pairs.drop_colors(centre, keep[:, 0], noise[:, 0])
            neighbour = patch_pairs.drop_colors(neighbour, keep[:, 1], noise[:, 1])
        return centre, neighbour, labels

    def classify(self, centre, neighbour, training):
        """Location logits ``[n, 8]`` of patch pairs (both patches encoded in one call)."""
        features = self.patch_encoder(tf.concat([centre, neighbour], axis=0), training=training)
        first, second = tf.split(features, 2, axis=0)
        return self.classifier(tf.concat([first, second], axis=1), training=training)

    def pretext_logits(self, view, training):
        seed = step_seed(self, new_seed(self.seed), training)
        centre, neighbour, labels = self.make_pairs(view, seed)
        logits = self.classify(centre, neighbour, training)
        # The probe reads the exported network on whole images (inference-mode BatchNorm).
        return logits, labels, self.encoder(view, training=False)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.patch_encoder),
            "image_shape": self.image_shape,
            "patch_size": self.patch_size,
            "gap": self.gap,
            "jitter": self.jitter,
            "color_drop": self.color_drop,
            "seed": self.seed,
        }


def _check_color_drop(color_drop, channels):
    if color_drop is None:
        return channels == 3
    if not isinstance(color_drop, bool) or (color_drop and channels != 3):
        raise ValueError(
            f"`color_drop` must be None, True (RGB images only) or False; received "
            f"{color_drop!r} for images with {channels} channel(s). Fix: pass None to drop colours "
            "exactly when the images are RGB."
        )
    return color_drop
