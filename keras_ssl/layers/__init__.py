"""Reusable layers: heads, queues, centres, patch grids, fused BatchNorm."""

from keras_ssl.layers.batch_norm import BatchNormalization
from keras_ssl.layers.dino_head import DINOHead
from keras_ssl.layers.masked_conv import MaskedConv2D
from keras_ssl.layers.memory_queue import MemoryQueue
from keras_ssl.layers.mlp_head import MLPHead
from keras_ssl.layers.patch_grid import PatchGrid, PatchGridEncoder

__all__ = [
    "BatchNormalization",
    "DINOHead",
    "MLPHead",
    "MaskedConv2D",
    "MemoryQueue",
    "PatchGrid",
    "PatchGridEncoder",
]
