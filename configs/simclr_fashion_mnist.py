"""SimCLR on Fashion-MNIST with a small ResNet: the CPU demo (`make demo`).

    keras-ssl train --config configs/simclr_fashion_mnist.py --workdir runs/simclr

Tuned for a few minutes on a 2-core CPU (bfloat16 where the CPU has AMX): short training
favours mild crops (scale 0.7-1 beat 0.08-1, 0.2-1 and 0.5-1 in 2-epoch runs), temperature
0.2 (beat 0.1 and 0.5) and a 512-wide projection hidden layer. For long runs use the paper's
stronger crops (``--config.augment.kwargs.crop_scale='(0.2, 1.0)'``) and more epochs.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "simclr"
    config.method_kwargs = {
        "temperature": 0.2,
        "projection_dim": 128,
        "projection_hidden_dim": 512,
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.kwargs = {"crop_scale": (0.7, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 128
    config.epochs = 6
    config.time_budget_minutes = 8.0  # safety net on slower machines; 6 epochs take ~7 here
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_epochs = 0.25
    return config
