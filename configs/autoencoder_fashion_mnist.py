"""Denoising autoencoder on Fashion-MNIST with a small ResNet encoder.

    keras-ssl train --config configs/autoencoder_fashion_mnist.py --workdir runs/autoencoder

Masking noise destroys 25% of the pixels (Vincent et al. 2008 use 10-40%); the decoder is the
DCGAN-style ``ConvDecoder`` (7x7x64 -> 14x14x32 -> 28x28x1) and the loss is binary
cross-entropy. No augmentation (preset "identity"): the corruption is the task. For a plain
autoencoder set ``--config.method_kwargs.noise=None``.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "autoencoder"
    config.method_kwargs = {
        "noise": "masking",
        "noise_amount": 0.25,
        "reconstruction_loss": "bce",
        "decoder_widths": (64, 32),
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.preset = "identity"
    config.augment.kwargs = {}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 128
    config.epochs = 4
    config.time_budget_minutes = 10.0
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_epochs = 0.25
    return config
