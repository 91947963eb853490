"""MoCo v3 on Fashion-MNIST with a small ViT (patch 4): the paper's ViT recipe at CPU size.

    keras-ssl train --config configs/moco_v3_fashion_mnist.py --workdir runs/moco_v3

Chen, Xie & He 2021 (arXiv:2104.02057) train ViT-S/16 and ViT-B/16 at batch 4096 for 300
epochs. Kept from the paper: no queue, in-batch keys of the global batch, the symmetrised
contrastive loss scaled by 2t with the ViT temperature t = 0.2, a 3-layer projector and a
2-layer predictor with BatchNorm on every layer, the momentum encoder at 0.99 rising to 1 on a
cosine over the whole run (converted with the real steps per epoch when ``fit`` starts, so it
follows ``--config.batch_size``, ``--config.epochs`` and subsets alike), the fixed random
patch projection (``freeze_patch_projection``, on by default for ViTs), BYOL's augmentation and
AdamW with weight decay 0.1.

Scaled down for a CPU: a 4-block, 64-wide ViT on 28 px images (7x7 patches of 4 px, as DINO's
config), heads of 512 hidden and 128 out (paper: 4096 and 256 after a 384-768-d ViT), batch
256 for 10 epochs, crops of at least 20% of the image (paper: 8% of a 224 px image; a 28 px
crop of 8% keeps about 2 patches), and a learning rate of 5e-4 with a 1-epoch warm-up (the
paper's 1.5e-4 * batch / 256 with 40 warm-up epochs is tuned for 300 epochs at batch 4096;
a 10-epoch run needs a larger rate). These values were not tuned here. A step takes about 0.7 s
on a busy 2-core machine (measured), so 10 epochs of 234 steps take about 30 minutes; the
30-minute ``time_budget_minutes`` stops a slower run early. The paper trains
ResNet-50 with LARS instead (``--config.backbone=small_resnet``, ``--config.optimizer.name=lars``,
learning rate 0.3 * batch / 256, weight decay 1.5e-6; the temperature then defaults to 1.0).
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "moco_v3"
    config.method_kwargs = {
        "projection_hidden_dim": 512,
        "projection_dim": 128,
        "prediction_hidden_dim": 512,
        "temperature": 0.2,
        "momentum": 0.99,
        "final_momentum": 1.0,  # cosine over the whole run (momentum_epochs=None)
        "freeze_patch_projection": True,
    }
    config.backbone = "vit"
    config.backbone_kwargs = {"patch_size": 4, "dim": 64, "depth": 4, "num_heads": 4}
    config.augment.preset = "byol"
    config.augment.kwargs = {"crop_scale": (0.2, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 256
    config.epochs = 10
    config.time_budget_minutes = 30.0
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 5e-4
    config.optimizer.weight_decay = 0.1
    config.optimizer.warmup_epochs = 1.0
    return config
