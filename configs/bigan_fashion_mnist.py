"""BiGAN on Fashion-MNIST: small ResNet encoder, DCGAN-style generator, joint discriminator.

    keras-ssl train --config configs/bigan_fashion_mnist.py --workdir runs/bigan

The paper's optimiser settings are Adam with learning rate 2e-4 and beta_1 = 0.5; the config
schema has no beta_1 field, so this uses Adam(2e-4) with Keras' beta_1 = 0.9 (the discriminator
gets a copy of the same optimizer). A 50-dimensional uniform prior as in the paper's MNIST
experiments; no augmentation (the "identity" preset). The representation is E(x).
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "bigan"
    config.method_kwargs = {
        "latent_dim": 50,
        "prior": "uniform",
        "generator_widths": (64, 32),
        "discriminator_widths": (32, 64),
        "discriminator_hidden_dim": 256,
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
    config.optimizer.learning_rate = 2e-4
    config.optimizer.schedule = "constant"
    return config
