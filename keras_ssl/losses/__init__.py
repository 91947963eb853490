"""Losses: pure functions of tensors and thin ``keras.losses.Loss`` wrappers."""

from keras_ssl.losses.contrastive import InfoNCE, NTXent, info_nce, nt_xent

__all__ = ["InfoNCE", "NTXent", "info_nce", "nt_xent"]
