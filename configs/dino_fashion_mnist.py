"""DINO on Fashion-MNIST with a small ViT (patch 4): the paper's recipe at CPU size.

    keras-ssl train --config configs/dino_fashion_mnist.py --workdir runs/dino

Caron et al. 2021 (arXiv:2104.14294) train ViT-S/16 with a 65536-prototype head, 2 global crops
of 224 px and 6-10 local crops of 96 px. Here: a 4-block, 64-wide ViT on 28 px images (7x7
patches of 4 px), 2 global crops of 28 px and 6 local crops of 12 px (96/224 of the side, a 3x3
patch grid), a 4096-prototype head with 512-wide hidden layers and a 128-d bottleneck. The paper's
other settings are kept: student temperature 0.1, teacher temperature warmed up from 0.04 to 0.07
(over the first third of training, as 30 of the paper's 100 epochs), centre momentum 0.9, teacher
momentum 0.996 rising to 1, prototypes frozen during the first epoch, AdamW with weight decay 0.04.

The schedules are counted in optimizer steps of the 60,000-image train split and follow
``--config.batch_size`` and ``--config.epochs``; set them again in ``method_kwargs`` when
training on a subset (``data.train_examples``).
"""

from keras_ssl.config import default_config

TRAIN_IMAGES = 60_000  # Fashion-MNIST's train split


def get_config():
    config = default_config()
    config.method = "dino"
    config.backbone = "vit"
    config.backbone_kwargs = {"patch_size": 4, "dim": 64, "depth": 4, "num_heads": 4}
    config.augment.preset = "multicrop"
    config.augment.kwargs = {"local_size": 12, "num_local": 6}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 128
    config.epochs = 6
    config.time_budget_minutes = 30.0
    steps_per_epoch = TRAIN_IMAGES // config.get_ref("batch_size")
    config.method_kwargs = {
        "out_dim": 4096,
        "hidden_dim": 512,
        "bottleneck_dim": 128,
        "student_temp": 0.1,
        "warmup_teacher_temp": 0.04,
        "teacher_temp": 0.07,
        "warmup_teacher_temp_steps": config.get_ref("epochs") * steps_per_epoch // 3,
        "center_momentum": 0.9,
        "momentum": 0.996,
        "momentum_steps": config.get_ref("epochs") * steps_per_epoch,
        "freeze_last_layer_steps": steps_per_epoch,
    }
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 5e-4
    config.optimizer.weight_decay = 0.04
    config.optimizer.warmup_epochs = 0.5
    return config
