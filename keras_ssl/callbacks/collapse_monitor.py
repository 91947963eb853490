"""CollapseMonitor: embedding spread and effective rank, with a warning on collapse."""

import math
import warnings

import numpy as np
import tensorflow as tf

from keras_ssl.callbacks.base import ProbeCallback, check_every_n_epochs
from keras_ssl.evaluation.features import (
    as_image_array,
    check_features,
    extract_features,
    l2_normalize,
)
from keras_ssl.validation import check_int

# Below this root-mean-square distance from their mean, L2-normalised embeddings are one point
# up to float32 rounding, and the singular values carry no information.
_POINT_SPREAD = 1e-5


class CollapseWarning(UserWarning):
    """Emitted when the embeddings of a self-supervised encoder collapse."""


def embedding_std(embeddings):
    """Mean per-dimension standard deviation of L2-normalised embeddings, times ``sqrt(D)``.

    For embeddings spread uniformly over the unit sphere each coordinate has standard deviation
    ``1 / sqrt(D)``, so the value is about 1; it falls to 0 when every input maps to the same
    point (complete collapse). Used as the collapse signal in SimSiam (Chen & He, 2021,
    https://arxiv.org/abs/2011.10566).

    Args:
        embeddings: ``[N, D]`` array (normalised here).

    Returns:
        Python float.
    """
    normalized = l2_normalize(check_features(embeddings, "embeddings")).astype(np.float64)
    return float(np.mean(np.std(normalized, axis=0)) * math.sqrt(normalized.shape[1]))


def effective_rank(embeddings):
    """Effective rank (Roy & Vetterli, 2007) of the centred, L2-normalised embeddings.

    ``exp(H(p))`` where ``p`` are the singular values of the centred ``[N, D]`` matrix divided
    by their sum and ``H`` is the Shannon entropy: ``D`` when all directions carry equal
    variance, 1 when one direction carries it all, at most the matrix rank. Embeddings that are
    all one point (no spread beyond float32 rounding) have effective rank 1.

    Args:
        embeddings: ``[N, D]`` array (normalised here).

    Returns:
        Python float in ``[1, min(N, D)]``.

    References:
        Roy & Vetterli, "The effective rank: a measure of effective dimensionality",
        EUSIPCO 2007.
    """
    normalized = l2_normalize(check_features(embeddings, "embeddings")).astype(np.float64)
    centred = normalized - normalized.mean(axis=0)
    if math.sqrt(np.mean(np.sum(np.square(centred), axis=1))) < _POINT_SPREAD:
        return 1.0
    singular_values = np.linalg.svd(centred, compute_uv=False)
    p = singular_values / np.sum(singular_values)
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


class CollapseMonitor(ProbeCallback):
    """Logs how spread out ``model.encoder``'s embeddings are and warns when they collapse.

    At the end of every ``every_n_epochs``-th epoch (and the last epoch of ``fit``, or the
    epoch after which training stops early) the
    callback embeds ``images`` with ``self.model.encoder`` (``training=False``) and writes

    - ``{name_prefix}embedding_std``: :func:`embedding_std`, about 1 for healthy embeddings,
      towards 0 under complete collapse;
    - ``{name_prefix}effective_rank``: :func:`effective_rank`, between 1 and
      ``min(len(images), D)``; a low value signals dimensional collapse.

    When ``embedding_std`` is below ``std_threshold`` (or ``effective_rank`` below
    ``rank_threshold``, when given) it emits a :class:`CollapseWarning` through
    ``warnings.warn``, naming the epoch and the values. Epochs where it does not run get
    ``NaN`` under both keys, so ``History`` stays aligned with the epochs.

    Args:
        images: ``uint8`` / float images ``[N, H, W, C]`` (or ``[N, H, W]``), or a
            ``tf.data.Dataset`` of images or ``(image, label)`` pairs; a few hundred to a few
            thousand images (the effective rank is at most ``N``).
        every_n_epochs: run every this many epochs.
        std_threshold: warn when ``embedding_std`` falls below this value.
        rank_threshold: warn when ``effective_rank`` falls below this value; ``None`` (the
            default) disables the rank warning, because healthy SSL embeddings often use far
            fewer than ``D`` directions and no threshold fits every encoder.
        name_prefix: prepended to both logs keys (e.g. ``"teacher_"``).
        batch_size: images per encoder call.
        verbose: 1 prints both values when it runs.

    Attributes:
        results: dict ``epoch (from 1) -> {"embedding_std": ..., "effective_rank": ...}``.
    """

    def __init__(
        self,
        images,
        every_n_epochs=1,
        std_threshold=0.1,
        rank_threshold=None,
        name_prefix="",
        batch_size=512,
        verbose=0,
    ):
        check_every_n_epochs(every_n_epochs)
        super().__init__(every_n_epochs=every_n_epochs, verbose=verbose)
        self.images = images if isinstance(images, tf.data.Dataset) else as_image_array(images)
        check_int(batch_size, "batch_size")
        _check_threshold(std_threshold, "std_threshold")
        if rank_threshold is not None:
            _check_threshold(rank_threshold, "rank_threshold")
        self.std_threshold = std_threshold
        self.rank_threshold = rank_threshold
        self.name_prefix = name_prefix
        self.batch_size = batch_size
        self.log_keys = (f"{name_prefix}embedding_std", f"{name_prefix}effective_rank")

    def log_values(self, result):
        std_key, rank_key = self.log_keys
        return {std_key: result["embedding_std"], rank_key: result["effective_rank"]}

    def after_evaluate(self, epoch, result):
        std_key, rank_key = self.log_keys
        std_low = result["embedding_std"] < self.std_threshold
        rank_low = self.rank_threshold is not None and (
            result["effective_rank"] < self.rank_threshold
        )
        if std_low or rank_low:
            reasons = []
            if std_low:
                reasons.append(
                    f"{std_key} = {result['embedding_std']:.4g} < std_threshold = "
                    f"{self.std_threshold}"
                )
            if rank_low:
                reasons.append(
                    f"{rank_key} = {result['effective_rank']:.4g} < rank_threshold = "
                    f"{self.rank_threshold}"
                )
            warnings.warn(
                f"Epoch {epoch}: the embeddings are collapsing ({'; '.join(reasons)}; "
                f"{rank_key} = {result['effective_rank']:.4g}). Healthy embeddings have "
                "embedding_std near 1. Fix: check the loss (stop-gradient, predictor, "
                "centring/sharpening, variance term), lower the learning rate, or "
                "strengthen the augmentations.",
                CollapseWarning,
                stacklevel=2,
            )

    def evaluate(self):
        """Embeds ``images`` with the current encoder; returns both statistics in a dict."""
        embeddings = extract_features(self.encoder, self.images, self.batch_size, normalize=True)
        return {
            "embedding_std": embedding_std(embeddings),
            "effective_rank": effective_rank(embeddings),
        }


def _check_threshold(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(
            f"`{name}` must be a number; received {value!r}. Fix: pass a float such as "
            f"{0.1 if name == 'std_threshold' else 2.0}, or 0 to never warn."
        )
