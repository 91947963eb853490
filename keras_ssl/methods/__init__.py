"""Self-supervised methods: each a ``keras.Model`` with its own ``train_step``."""

from keras_ssl.methods.barlow_twins import BarlowTwins
from keras_ssl.methods.base import SSLMethod
from keras_ssl.methods.byol import BYOL
from keras_ssl.methods.cpc import CPC
from keras_ssl.methods.dino import DINO
from keras_ssl.methods.moco import MoCo
from keras_ssl.methods.momentum import MomentumMethod
from keras_ssl.methods.simclr import SimCLR
from keras_ssl.methods.simsiam import SimSiam
from keras_ssl.methods.vicreg import VICReg

#: Methods by the name configs use.
REGISTRY = {
    "simclr": SimCLR,
    "moco": MoCo,
    "cpc": CPC,
    "byol": BYOL,
    "simsiam": SimSiam,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
    "dino": DINO,
}

__all__ = [
    "BYOL",
    "CPC",
    "DINO",
    "REGISTRY",
    "BarlowTwins",
    "MoCo",
    "MomentumMethod",
    "SSLMethod",
    "SimCLR",
    "SimSiam",
    "VICReg",
]
