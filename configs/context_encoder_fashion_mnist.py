"""Context encoder on Fashion-MNIST with a small ResNet encoder.

    keras-ssl train --config configs/context_encoder_fashion_mnist.py --workdir runs/context_encoder

Random blocks (squares of a quarter of the side, about a quarter of the image dropped) instead
of the paper's random regions: Pathak et al. take region shapes from PASCAL VOC segmentations,
which are not available offline, and blocks of 7x7 pixels leave a clear task on 28x28 images
(``--config.method_kwargs.mask=random_region`` uses synthetic blob regions). The loss weights
are the paper's (0.999 reconstruction, 0.001 adversarial); the discriminator gets a copy of the
configured optimizer. Light crops and flips vary the images.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "context_encoder"
    config.method_kwargs = {
        "mask": "random_blocks",
        "reconstruction_weight": 0.999,
        "adversarial_weight": 0.001,
        "decoder_widths": (64, 32),
        "discriminator_widths": (32, 64),
    }
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
