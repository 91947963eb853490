"""Split-brain autoencoder (Zhang et al. 2017) on RGB images: L -> ab and ab -> L halves.

    keras-ssl train --config configs/split_brain_photos.py --workdir runs/split_brain

Colour methods need RGB data: Fashion-MNIST is grayscale. ``keras_ssl.experiment`` loads
labelled datasets only (the probes need labels), so this config trains on TFDS CIFAR-10
(``--config.data.data_dir`` for a local copy); ``examples/split_brain_photos.py`` trains on crops
of scikit-image's sample photos (``keras_ssl.datasets.sample_photos``) without any download.
Each half has half the channels: widths (8, 16, 32) per half give a 64-d representation, as
wide as the (16, 32, 64) network of ``configs/colorization_photos.py``.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "split_brain"
    config.method_kwargs = {"head_dim": 64}
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (8, 16, 32)}
    config.augment.preset = "crop_flip"
    config.augment.kwargs = {"crop_scale": (0.5, 1.0)}
    config.data.dataset = "tfds:cifar10"
    config.data.probe_train_examples = 10000
    config.batch_size = 64
    config.epochs = 10
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_epochs = 0.25
    return config
