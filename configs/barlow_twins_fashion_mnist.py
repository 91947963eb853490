"""Barlow Twins on Fashion-MNIST with a small ResNet: a CPU-sized run.

    keras-ssl train --config configs/barlow_twins_fashion_mnist.py --workdir runs/barlow_twins

The paper's 8192-8192-8192 projector is scaled down to 512-512-512 for a 64-wide encoder on
28x28 images (the loss keeps lambda = 5e-3; it was tuned for D = 8192, and 1/D-like values
work as well). Augmentations are BYOL's asymmetric recipe, as in the paper, with the milder
crops (area 0.5-1) that short runs favour; for long runs use
``--config.augment.kwargs.crop_scale='(0.2, 1.0)'`` and more epochs.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "barlow_twins"
    config.method_kwargs = {
        "projection_hidden_dim": 512,
        "projection_dim": 512,
        "projection_layers": 3,
        "redundancy_weight": 5e-3,
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
