"""Colorization (Zhang et al. 2016) on RGB images: the encoder sees L, predicts ab bins.

    keras-ssl train --config configs/colorization_photos.py --workdir runs/colorization

Colour methods need RGB data: Fashion-MNIST is grayscale. ``keras_ssl.experiment`` loads
labelled datasets only (the probes need labels), so this config trains on TFDS CIFAR-10
(``--config.data.data_dir`` for a local copy); ``examples/colorize_photos.py`` trains on crops of
scikit-image's sample photos (``keras_ssl.datasets.sample_photos``) without any download. The
rebalancing prior is uniform unless ``model.adapt(images)`` is called (see the class docs).
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "colorization"
    config.method_kwargs = {"head_dim": 64}
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
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
