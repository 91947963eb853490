"""Reusable layers: heads, queues, centres, patch grids."""

from keras_ssl.layers.mlp_head import MLPHead

__all__ = ["MLPHead"]
