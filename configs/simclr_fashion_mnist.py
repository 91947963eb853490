"""SimCLR on Fashion-MNIST with a small ResNet: the CPU demo (`make demo`).

keras-ssl train --config configs/simclr_fashion_mnist.py --workdir runs/simclr
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "simclr"
    config.method_kwargs = {
        "temperature": 0.5,
        "projection_dim": 128,
        "projection_hidden_dim": 64,
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.kwargs = {"crop_scale": (0.08, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.batch_size = 256
    config.epochs = 5
    return config
