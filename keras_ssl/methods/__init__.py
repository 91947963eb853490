"""Self-supervised methods: each a ``keras.Model`` with its own ``train_step``."""

from keras_ssl.methods.base import SSLMethod
from keras_ssl.methods.simclr import SimCLR

#: Methods by the name configs use.
REGISTRY = {"simclr": SimCLR}

__all__ = ["REGISTRY", "SSLMethod", "SimCLR"]
