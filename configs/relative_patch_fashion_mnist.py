"""Relative patch location (context prediction) on Fashion-MNIST with a small ResNet per patch.

    keras-ssl train --config configs/relative_patch_fashion_mnist.py --workdir runs/relative_patch

The paper's grid (96-px patches, 48-px gaps, up to 7 px of jitter) scaled to 28 px: 6-px
patches, 3-px gaps and 1 px of jitter, a 24-px grid plus 2 px of jitter margin. The backbone is
built for 28x28 images and rebuilt for 6x6 patches with the same layers; the exported encoder is
that network applied to whole images. The classifier on the concatenated (centre, neighbour)
features has one 512-wide hidden layer (the paper's fc7 is 4096 wide on AlexNet).
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "relative_patch"
    config.method_kwargs = {"patch_size": 6, "gap": 3, "jitter": 1, "head_hidden_dims": (512,)}
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.preset = "crop_flip"
    config.augment.kwargs = {"crop_scale": (0.7, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 128
    config.epochs = 4
    config.time_budget_minutes = 10.0
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_epochs = 0.25
    return config
