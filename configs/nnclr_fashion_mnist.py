"""NNCLR on Fashion-MNIST with a small ResNet: a CPU-sized run.

    keras-ssl train --config configs/nnclr_fashion_mnist.py --workdir runs/nnclr

NNCLR (Dwibedi et al. 2021, arXiv:2104.14548): the nearest neighbour of each projection in a
support set of recent first-view projections is the positive for the other view's prediction,
temperature 0.1 as in the paper. Scaled down from the paper (ResNet-50, batch 4096, support set
of 98,304, projector 2048 -> 2048 -> 256, predictor 4096 -> 256, LARS at learning rate 4.8,
weight decay 1e-6, 1000 epochs):

- heads sized for a 64-d encoder: projector 512 -> 512 -> 128, predictor 512 -> 128;
- a support set of 4096 projections (32 batches of 128; it must be a multiple of the global
  batch): 6.8% of the 60,000 training images, close to the paper's 98,304 / 1.28M = 7.7%;
- AdamW at batch 128 (LARS is meant for batches of thousands); use
  ``--config.optimizer.name=lars`` with ``learning_rate=0.3, scaling=linear`` for the paper's
  optimiser at large batches;
- SimCLR's augmentation with crops of 20-100% of the image, as in MoCo v2 (the class default
  and the paper use BYOL's asymmetric recipe, whose blur and solarization add little on 28x28
  grayscale images), rather than 8-100%: 28x28 images lose their content in smaller crops.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "nnclr"
    config.method_kwargs = {
        "queue_size": 4096,
        "projection_hidden_dim": 512,
        "projection_dim": 128,
        "projection_layers": 3,
        "prediction_hidden_dim": 512,
        "temperature": 0.1,
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.preset = "simclr"
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
