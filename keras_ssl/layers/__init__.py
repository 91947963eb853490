"""Reusable layers: heads, queues, centres, patch grids."""

from keras_ssl.layers.dino_head import DINOHead
from keras_ssl.layers.masked_conv import MaskedConv2D
from keras_ssl.layers.memory_queue import MemoryQueue
from keras_ssl.layers.mlp_head import MLPHead
from keras_ssl.layers.patch_grid import PatchGrid, PatchGridEncoder

__all__ = ["DINOHead", "MLPHead", "MaskedConv2D", "MemoryQueue", "PatchGrid", "PatchGridEncoder"]
