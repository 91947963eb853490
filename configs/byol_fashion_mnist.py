"""BYOL on Fashion-MNIST with a small ResNet.

    keras-ssl train --config configs/byol_fashion_mnist.py --workdir runs/byol

BYOL (Grill et al. 2020, arXiv:2006.07733) with the paper's asymmetric augmentation
(``presets.byol``: blur on every first view and 10% of second views, solarization on 20% of
second views) and heads scaled down for a 64-d encoder (512 hidden, 128 out; the paper uses
4096 -> 256 after a 2048-d ResNet-50). The target momentum starts at 0.99 rather than the paper's
0.996: on a small data set and a short run the target must keep up with the online network. It
rises to 1 on the paper's cosine schedule over the whole run, which BYOL converts with the real
steps per epoch when ``fit`` starts (so it follows ``--config.batch_size``, ``--config.epochs``
and subsets alike).
The paper trains with LARS at batch 4096 (``--config.optimizer.name=lars``, learning rate
0.2 * batch / 256, weight decay 1.5e-6); at batch 128 AdamW trains faster.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "byol"
    config.method_kwargs = {
        "projection_hidden_dim": 512,
        "projection_dim": 128,
        "prediction_hidden_dim": 512,
        "momentum": 0.99,
        "final_momentum": 1.0,  # cosine over the whole run (momentum_epochs=None)
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.preset = "byol"
    config.augment.kwargs = {"crop_scale": (0.2, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 128
    config.epochs = 10
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 2e-3
    config.optimizer.weight_decay = 1e-4
    config.optimizer.warmup_epochs = 0.5
    return config
