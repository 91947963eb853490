"""Losses: pure functions of tensors and thin ``keras.losses.Loss`` wrappers."""

from keras_ssl.losses.adversarial import (
    BiGANLoss,
    bigan_discriminator_loss,
    bigan_generator_loss,
    discriminator_loss,
    generator_adversarial_loss,
)
from keras_ssl.losses.classification import RebalancedCrossEntropy, rebalanced_cross_entropy
from keras_ssl.losses.contrastive import (
    InfoNCE,
    NTXent,
    cpc_info_nce,
    info_nce,
    moco_v3_contrastive,
    nt_xent,
)
from keras_ssl.losses.distillation import (
    DINOLoss,
    batch_center,
    dino_loss,
    dino_terms,
    teacher_entropy,
    teacher_probabilities,
)
from keras_ssl.losses.mutual_information import IICLoss, iic_joint, iic_loss
from keras_ssl.losses.predictive_coding import cpc_terms
from keras_ssl.losses.pretext_classification import classification_terms
from keras_ssl.losses.pseudo_labels import pseudo_label_terms
from keras_ssl.losses.reconstruction import (
    ReconstructionNLL,
    gaussian_kl,
    masked_reconstruction_loss,
    reconstruction_loss,
    reconstruction_nll,
)
from keras_ssl.losses.redundancy import (
    BarlowTwinsLoss,
    VICRegLoss,
    barlow_twins_loss,
    barlow_twins_terms,
    vicreg_loss,
    vicreg_terms,
)
from keras_ssl.losses.regression import (
    NegativeCosineSimilarity,
    NormalizedMSE,
    cosine_similarity,
    negative_cosine_similarity,
    normalized_mse,
)
from keras_ssl.losses.swav import SwAVLoss, queued_sinkhorn_knopp, sinkhorn_knopp, swav_loss

__all__ = [
    "SwAVLoss",
    "queued_sinkhorn_knopp",
    "sinkhorn_knopp",
    "swav_loss",
    "BiGANLoss",
    "RebalancedCrossEntropy",
    "ReconstructionNLL",
    "bigan_discriminator_loss",
    "bigan_generator_loss",
    "classification_terms",
    "cpc_info_nce",
    "cpc_terms",
    "discriminator_loss",
    "gaussian_kl",
    "generator_adversarial_loss",
    "masked_reconstruction_loss",
    "rebalanced_cross_entropy",
    "reconstruction_loss",
    "reconstruction_nll",
    "BarlowTwinsLoss",
    "DINOLoss",
    "IICLoss",
    "NegativeCosineSimilarity",
    "NormalizedMSE",
    "VICRegLoss",
    "barlow_twins_loss",
    "barlow_twins_terms",
    "cosine_similarity",
    "batch_center",
    "dino_loss",
    "dino_terms",
    "pseudo_label_terms",
    "teacher_entropy",
    "iic_joint",
    "iic_loss",
    "negative_cosine_similarity",
    "normalized_mse",
    "teacher_probabilities",
    "vicreg_loss",
    "vicreg_terms",
    "InfoNCE",
    "NTXent",
    "info_nce",
    "moco_v3_contrastive",
    "nt_xent",
]
