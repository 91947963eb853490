"""RotationPrediction (RotNet) on Fashion-MNIST with a small ResNet.

    keras-ssl train --config configs/rotation_fashion_mnist.py --workdir runs/rotation

Each 28x28 image is turned by 0/90/180/270 degrees and all four copies share a batch (the
paper's recipe), so a batch of 128 images is 512 encoder inputs. The classifier is linear on the
pooled features. Augmentation: light random resized crops (scale 0.7-1) and flips; strong
colour jitter is not needed for this task.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "rotation"
    config.method_kwargs = {"head_hidden_dims": ()}
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
