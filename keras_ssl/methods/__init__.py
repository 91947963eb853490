"""Self-supervised methods: each a ``keras.Model`` with its own ``train_step``."""

from keras_ssl.methods.autoencoder import DenoisingAutoencoder
from keras_ssl.methods.barlow_twins import BarlowTwins
from keras_ssl.methods.base import SSLMethod
from keras_ssl.methods.bigan import BiGAN
from keras_ssl.methods.byol import BYOL
from keras_ssl.methods.colorization import Colorization
from keras_ssl.methods.context_encoder import ContextEncoder
from keras_ssl.methods.cpc import CPC
from keras_ssl.methods.deepcluster import DeepCluster
from keras_ssl.methods.deepcluster_callback import DeepClusterCallback
from keras_ssl.methods.dino import DINO
from keras_ssl.methods.iic import IIC
from keras_ssl.methods.jigsaw import Jigsaw
from keras_ssl.methods.mae import MAE
from keras_ssl.methods.moco import MoCo
from keras_ssl.methods.moco_v3 import MoCoV3
from keras_ssl.methods.momentum import MomentumMethod
from keras_ssl.methods.nnclr import NNCLR
from keras_ssl.methods.relative_patch import RelativePatchLocation
from keras_ssl.methods.rotation import RotationPrediction
from keras_ssl.methods.short_runs import ShortRunWarning
from keras_ssl.methods.simclr import SimCLR
from keras_ssl.methods.simsiam import SimSiam
from keras_ssl.methods.split_brain import SplitBrain
from keras_ssl.methods.swav import SwAV
from keras_ssl.methods.vae import VAE
from keras_ssl.methods.vicreg import VICReg

#: Methods by the name configs use.
REGISTRY = {
    "simclr": SimCLR,
    "moco": MoCo,
    "moco_v3": MoCoV3,
    "nnclr": NNCLR,
    "cpc": CPC,
    "byol": BYOL,
    "simsiam": SimSiam,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
    "dino": DINO,
    "swav": SwAV,
    "rotation": RotationPrediction,
    "relative_patch": RelativePatchLocation,
    "jigsaw": Jigsaw,
    "autoencoder": DenoisingAutoencoder,
    "context_encoder": ContextEncoder,
    "colorization": Colorization,
    "vae": VAE,
    "bigan": BiGAN,
    "iic": IIC,
    "deepcluster": DeepCluster,
    "split_brain": SplitBrain,
    "mae": MAE,
}

__all__ = [
    "BYOL",
    "BiGAN",
    "Colorization",
    "ContextEncoder",
    "DeepCluster",
    "DeepClusterCallback",
    "DenoisingAutoencoder",
    "IIC",
    "Jigsaw",
    "MAE",
    "RelativePatchLocation",
    "RotationPrediction",
    "VAE",
    "CPC",
    "DINO",
    "REGISTRY",
    "BarlowTwins",
    "MoCo",
    "MoCoV3",
    "MomentumMethod",
    "NNCLR",
    "SSLMethod",
    "ShortRunWarning",
    "SimCLR",
    "SimSiam",
    "SplitBrain",
    "SwAV",
    "VICReg",
]
