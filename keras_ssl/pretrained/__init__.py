"""Pretrained encoders by name.

    from keras_ssl import pretrained

    pretrained.list_weights()                      # ['simclr_fashion_mnist', ...]
    encoder = pretrained.load("simclr_fashion_mnist")  # keras.Model, weights verified + loaded
    features = encoder(images_uint8 / 255.0)            # [batch, 64]

Each name is a :class:`WeightsEntry` of the registry (``get_entry(name)``): method,
architecture, input shape, file or URL, SHA-256 and the probe accuracies that
``python -m keras_ssl.pretrained.build --name NAME`` measured when it made the weights.
"""

from keras_ssl.pretrained.loading import (
    CACHE_SUBDIR,
    WEIGHTS_DIR,
    build_encoder,
    load,
    sha256_of_file,
    weights_path,
)
from keras_ssl.pretrained.registry import (
    REGISTRY,
    WeightsEntry,
    get_entry,
    list_weights,
    register,
)

__all__ = [
    "CACHE_SUBDIR",
    "REGISTRY",
    "WEIGHTS_DIR",
    "WeightsEntry",
    "build_encoder",
    "get_entry",
    "list_weights",
    "load",
    "register",
    "sha256_of_file",
    "weights_path",
]
