"""MoCo v2 on Fashion-MNIST with a small ResNet: a CPU-sized run.

    keras-ssl train --config configs/moco_fashion_mnist.py --workdir runs/moco

MoCo v2's recipe (MLP head, temperature 0.2, queue of keys from a momentum encoder, "aug+"
augmentation with blur) at Fashion-MNIST scale: a 4096-key queue (32 batches of 128; the queue
size must be a multiple of the global batch), key-encoder momentum 0.99 (0.999 is tuned for
ImageNet's 500k+ steps; a run of a few thousand steps needs a faster key encoder, as MoCo's own
CIFAR demo uses) and the paper's crop scale 0.2-1.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "moco"
    config.method_kwargs = {
        "version": "v2",
        "queue_size": 4096,
        "temperature": 0.2,
        "projection_dim": 128,
        "projection_hidden_dim": 512,
        "momentum": 0.99,  # constant, as MoCo (final_momentum=None)
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    # MoCo v2's "aug+" = SimCLR's augmentation with blur, crops of 20-100% of the image.
    config.augment.preset = "simclr"
    config.augment.kwargs = {"crop_scale": (0.2, 1.0), "blur": True}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 128
    config.epochs = 6
    config.time_budget_minutes = 8.0
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_epochs = 0.25
    return config
