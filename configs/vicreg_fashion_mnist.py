"""VICReg on Fashion-MNIST with a small ResNet: a CPU-sized run.

    keras-ssl train --config configs/vicreg_fashion_mnist.py --workdir runs/vicreg

The paper's 8192-8192-8192 expander is scaled down to 512-512-512 for a 64-wide encoder on
28x28 images; the loss keeps the paper's weights (invariance 25, variance 25, covariance 1,
gamma 1, epsilon 1e-4). Augmentations are BYOL's asymmetric recipe, as in the paper, with the
milder crops (area 0.5-1) that short runs favour; for long runs use
``--config.augment.kwargs.crop_scale='(0.2, 1.0)'`` and more epochs.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "vicreg"
    config.method_kwargs = {
        "projection_hidden_dim": 512,
        "projection_dim": 512,
        "projection_layers": 3,
        "invariance_weight": 25.0,
        "variance_weight": 25.0,
        "covariance_weight": 1.0,
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.preset = "byol"
    config.augment.kwargs = {"crop_scale": (0.5, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 128
    config.epochs = 6
    config.time_budget_minutes = 8.0
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_epochs = 0.25
    return config
