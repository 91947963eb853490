"""Jigsaw: learn features by recognising which permutation shuffled the 3x3 tiles of an image."""

import keras
import tensorflow as tf

from keras_ssl.methods.patch_encoders import image_shape_of, patch_and_image_encoders
from keras_ssl.methods.pretext_classification import PretextClassificationMethod
from keras_ssl.methods.step_random import global_batch_draws, new_seed, step_seed
from keras_ssl.pretext import jigsaw as puzzles


@keras.saving.register_keras_serializable(package="keras_ssl")
class Jigsaw(PretextClassificationMethod):
    """Jigsaw puzzles (Noroozi & Favaro 2016, "Unsupervised Learning of Visual Representations by
    Solving Jigsaw Puzzles", https://arxiv.org/abs/1603.09246).

    Each image of the (lightly augmented) view becomes a puzzle: a 3x3 grid of cells centred in
    the image, one tile per cell cut at a random position inside the cell (gaps and jitter, so
    edges and straight lines do not give the order away), optionally standardised per tile
    (the paper normalises each tile's mean and standard deviation), then shuffled by one of
    ``P`` permutations picked uniformly. The permutation set is fixed by ``seed``
    (:func:`keras_ssl.pretext.jigsaw.permutation_set`: greedy maximal Hamming distance; its
    minimal distance is ``min_distance``). The same encoder embeds every tile (all tiles of the
    batch in one call); the 9 features, concatenated in puzzle order, go through an MLP that
    predicts the permutation (``P``-way softmax). Loss: mean sparse softmax cross-entropy;
    ``pretext_accuracy``: fraction of puzzles solved.

    Encoders. ``tile_encoder`` is trained on tiles. ``encoder`` (what ``model(images)``, the
    probes and ``keras_ssl.export`` use, and the online probe's features) is the SAME network,
    i.e. the same layers and weights, applied to whole images: the backbone as it would be used
    downstream. Give the backbone as an image encoder (``image_shape=None``; it is rebuilt for
    tiles with ``patch_encoders.encoder_for_patches``, same layers, weights copied) or as a tile
    encoder with ``image_shape``. Its layers must accept any spatial size (every keras_ssl
    backbone).

    Randomness and replicas: the puzzle of every image is drawn statelessly from ``seed`` and
    the optimizer step, for the whole global batch, and each replica takes its own rows, so N
    replicas draw the same puzzles as one device, and a resumed run continues the same stream.

    Args:
        encoder: image encoder (``image_shape=None``) or tile encoder (with ``image_shape``).
        augmenter: view generator; default ``presets.crop_flip`` (one view). The first is used.
        image_shape: ``(H, W, C)`` when ``encoder`` takes tiles; ``None`` otherwise.
        num_permutations: ``P`` (the paper's best: 1000; default 100, at least 2).
        min_hamming: minimal Hamming distance the permutation set must reach, or ``None``.
        tile_size: tile side or ``(height, width)``; ``None``: 64/75 of the cell (7 px at 28).
        cell_size: cell side or pair; ``None``: a third of the image (9 px at 28; 3 cells must
            fit in the image).
        normalize_tiles: standardise each tile (paper: yes; blocks low-level statistics cues).
        head_hidden_dims: hidden sizes of the classifier on the concatenated tile features
            (paper: fc7 of 4096 on AlexNet; scaled to 1024).
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        seed: seed of the permutation set and of the puzzles.
        probe_classes: classes of the online linear probe, or ``None``.
    """

    classifier_name = "permutation_classifier"

    classifier_inputs = puzzles.GRID**2

    def __init__(
        self,
        encoder,
        augmenter=None,
        image_shape=None,
        num_permutations=100,
        min_hamming=None,
        tile_size=None,
        cell_size=None,
        normalize_tiles=True,
        head_hidden_dims=(1024,),
        synchronized_bn=None,
        seed=0,
        probe_classes=None,
        **kwargs,
    ):
        shape = image_shape_of(encoder, image_shape)
        default_tile, default_cell = puzzles.default_tile_geometry(shape[:2])
        if tile_size is None:
            tile_size = default_tile if image_shape is None else encoder.input_shape[1:3]
        tile_size = puzzles.pair(tile_size, "tile_size")
        cell_size = puzzles.pair(default_cell if cell_size is None else cell_size, "cell_size")
        puzzles.jigsaw_geometry(shape[:2], tile_size, cell_size)
        permutations, min_distance = puzzles.permutation_set(
            num_permutations, seed=seed, min_hamming=min_hamming
        )
        tile_encoder, image_encoder, image_shape = patch_and_image_encoders(
            encoder, image_shape, tile_size, "Jigsaw"
        )
        super().__init__(
            image_encoder,
            num_permutations,
            augmenter=augmenter,
            head_hidden_dims=head_hidden_dims,
            synchronized_bn=synchronized_bn,
            probe_classes=probe_classes,
            **kwargs,
        )
        self.tile_encoder = tile_encoder
        self.num_permutations = num_permutations
        self.min_hamming = min_hamming
        self.tile_size = tile_size
        self.cell_size = cell_size
        self.normalize_tiles = normalize_tiles
        self.seed = seed
        self.permutations = permutations
        self.min_distance = min_distance

    def make_puzzles(self, view, seed):
        """Shuffled tiles ``[n, 9, th, tw, C]`` (standardised if set) and labels ``[n]``."""
        max_offset = tuple(c - t for c, t in zip(self.cell_size, self.tile_size))
        labels, offsets = global_batch_draws(
            lambda total: puzzles.sample_jigsaw(total, seed, self.num_permutations, max_offset),
            tf.shape(view)[0],
        )
        tiles = puzzles.cut_tiles(view, offsets, self.tile_size, self.cell_size)
        tiles = puzzles.shuffle_tiles(tiles, self.permutations, labels)
        if self.normalize_tiles:
            tiles = puzzles.standardize_patches(tiles)
        return tiles, labels

    def classify(self, tiles, training):
        """Permutation logits ``[n, P]`` of shuffled tiles ``[n, 9, th, tw, C]``."""
        flat = tf.reshape(tiles, [-1, *tiles.shape[2:]])
        features = self.tile_encoder(flat, training=training)
        features = tf.reshape(features, [-1, self.classifier_inputs * self.feature_dim])
        return self.classifier(features, training=training)

    def pretext_logits(self, view, training):
        tiles, labels = self.make_puzzles(view, step_seed(self, new_seed(self.seed), training))
        logits = self.classify(tiles, training)
        # The probe reads the exported network on whole images (inference-mode BatchNorm).
        return logits, labels, self.encoder(view, training=False)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.tile_encoder),
            "image_shape": self.image_shape,
            "num_permutations": self.num_permutations,
            "min_hamming": self.min_hamming,
            "tile_size": self.tile_size,
            "cell_size": self.cell_size,
            "normalize_tiles": self.normalize_tiles,
            "seed": self.seed,
        }
