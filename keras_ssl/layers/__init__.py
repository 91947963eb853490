"""Reusable layers: heads, queues, centres, patch grids, fused BatchNorm, discriminators."""

from keras_ssl.layers.batch_norm import BatchNormalization
from keras_ssl.layers.dino_head import DINOHead
from keras_ssl.layers.discriminators import ConvDiscriminator, JointDiscriminator
from keras_ssl.layers.drop_path import DropPath
from keras_ssl.layers.masked_conv import MaskedConv2D
from keras_ssl.layers.memory_queue import MemoryQueue
from keras_ssl.layers.mlp_head import MLPHead
from keras_ssl.layers.patch_grid import PatchGrid, PatchGridEncoder

__all__ = [
    "BatchNormalization",
    "ConvDiscriminator",
    "DINOHead",
    "DropPath",
    "JointDiscriminator",
    "MLPHead",
    "MaskedConv2D",
    "MemoryQueue",
    "PatchGrid",
    "PatchGridEncoder",
]
