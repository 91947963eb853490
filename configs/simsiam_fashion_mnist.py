"""SimSiam on Fashion-MNIST with a small ResNet.

    keras-ssl train --config configs/simsiam_fashion_mnist.py --workdir runs/simsiam

SimSiam (Chen & He 2021, arXiv:2011.10566) with its CIFAR-10 recipe scaled to a 64-d encoder:
a 2-layer projector (the paper's CIFAR variant) of width 512 with BatchNorm on its output, a
128-wide predictor bottleneck, SimCLR's augmentations, and SGD with momentum 0.9, learning rate
0.03 * batch / 256 and weight decay 5e-4 under a cosine schedule.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "simsiam"
    config.method_kwargs = {
        "projection_hidden_dim": 512,
        "projection_dim": 512,
        "projection_layers": 2,
        "prediction_hidden_dim": 128,
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.preset = "simclr"
    config.augment.kwargs = {"crop_scale": (0.2, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 128
    config.epochs = 10
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 0.03 * 128 / 256
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 5e-4
    config.optimizer.warmup_epochs = 0.0
    return config
