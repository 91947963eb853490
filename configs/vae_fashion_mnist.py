"""VAE on Fashion-MNIST with a small ResNet encoder and a DCGAN-style decoder.

    keras-ssl train --config configs/vae_fashion_mnist.py --workdir runs/vae

Bernoulli likelihood on the [0, 1] pixels and beta = 1 (the ELBO of Kingma & Welling); no
augmentation (the "identity" preset: one view, the image itself). The representation that the
kNN and linear probes and the export use is the posterior mean mu.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "vae"
    config.method_kwargs = {
        "latent_dim": 32,
        "beta": 1.0,
        "likelihood": "bernoulli",
        "decoder_widths": (64, 32),
        "seed": 0,
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.preset = "identity"
    config.augment.kwargs = {}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 128
    config.epochs = 6
    config.time_budget_minutes = 8.0
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_epochs = 0.25
    return config
