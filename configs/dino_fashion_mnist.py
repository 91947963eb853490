"""DINO on Fashion-MNIST with a small ViT (patch 4): the paper's recipe at CPU size.

    keras-ssl train --config configs/dino_fashion_mnist.py --workdir runs/dino

Caron et al. 2021 (arXiv:2104.14294) train ViT-S/16 with a 65536-prototype head, 2 global crops
of 224 px and 6-10 local crops of 96 px. Here: a 4-block, 64-wide ViT on 28 px images (7x7
patches of 4 px), 2 global crops of 28 px and 6 local crops of 12 px (96/224 of the side, a 3x3
patch grid), a 4096-prototype head with 512-wide hidden layers and a 128-d bottleneck. The paper's
other settings are kept: student temperature 0.1, teacher temperature warmed up from 0.04 to 0.07
(over the first 30% of training, as 30 of the paper's 100 epochs), centre momentum 0.9, teacher
momentum 0.996 rising to 1, prototypes frozen during the first epoch, AdamW with weight decay 0.04.

The schedules are in epochs: DINO converts them with the real steps per epoch when ``fit``
starts, so they follow ``--config.batch_size``, ``--config.epochs`` and subsets
(``data.train_examples``) alike. The teacher momentum's cosine spans the whole run.
"""

from keras_ssl.config import default_config


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
    config.method_kwargs = {
        "out_dim": 4096,
        "hidden_dim": 512,
        "bottleneck_dim": 128,
        "student_temp": 0.1,
        "warmup_teacher_temp": 0.04,
        "teacher_temp": 0.07,
        # The paper's 30 of 100 epochs, as a share of this shorter run.
        "warmup_teacher_temp_epochs": config.get_ref("epochs") * 3 / 10,
        "center_momentum": 0.9,
        "momentum": 0.996,
        "final_momentum": 1.0,
        "freeze_last_layer_epochs": 1,
    }
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 5e-4
    config.optimizer.weight_decay = 0.04
    config.optimizer.warmup_epochs = 0.5
    return config
