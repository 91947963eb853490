"""SimCLR on Fashion-MNIST with a small ResNet: the CPU demo (`make demo`).

    keras-ssl train --config configs/simclr_fashion_mnist.py --workdir runs/simclr

Tuned for a few minutes on a 2-core CPU (bfloat16 where the CPU has AMX): short training
favours mild crops (scale 0.7-1 beat 0.08-1, 0.2-1 and 0.5-1 in 2-epoch runs), temperature
0.2 (beat 0.1 and 0.5) and a 512-wide projection hidden layer. For long runs use the paper's
stronger crops (``--config.augment.kwargs.crop_scale='(0.2, 1.0)'``) and more steps
(``--config.train_steps=N``, or ``--config.epochs=N --config.train_steps=0``).
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
    # Batch 64 for 4,700 steps, whatever the data: 5 epochs of the full 60,000 images, 152 of
    # the embedded 2,000-image subset, so the demo beats raw pixels on both (README, "Demo").
    config.batch_size = 64
    config.epochs = 0  # (the length is train_steps)
    config.train_steps = 4700
    config.time_budget_minutes = 9.5  # safety net on slower machines: the demo stays < 10 min
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_epochs = 0.25
    return config
