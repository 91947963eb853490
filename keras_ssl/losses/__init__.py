"""Losses: pure functions of tensors and thin ``keras.losses.Loss`` wrappers."""

from keras_ssl.losses.contrastive import InfoNCE, NTXent, info_nce, nt_xent
from keras_ssl.losses.metric_learning import (
    ContrastiveMargin,
    NPair,
    TripletMargin,
    contrastive_margin,
    n_pair,
    triplet_margin,
)

__all__ = [
    "ContrastiveMargin",
    "InfoNCE",
    "NPair",
    "NTXent",
    "TripletMargin",
    "contrastive_margin",
    "info_nce",
    "n_pair",
    "nt_xent",
    "triplet_margin",
]
