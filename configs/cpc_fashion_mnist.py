"""CPC on Fashion-MNIST: 8-px patches with stride 4 (a 6x6 grid) and a small ResNet per patch.

    keras-ssl train --config configs/cpc_fashion_mnist.py --workdir runs/cpc

The grid: the paper's 64-px patches with stride 32 on 256-px images (7x7) scaled to 28 px give
7-px patches with stride 3 (8x8, CPC's default geometry at 28 px); 8-px patches with stride 4
(6x6) were chosen because a training step is about 3x faster on a 2-core CPU (36 patches per
image instead of 64, and InfoNCE over 36 * batch candidates instead of 64 * batch). With 6 rows,
K = 3 prediction steps leaves every step at least 3 context rows.

The backbone is built for the 28x28 images and CPC rebuilds it for 8x8 patches (same layers,
``image_shape=None``). Augmentation: CPC v1 uses none and CPC v2 crops, flips and colour-jitters;
there is no single-view preset yet, so this uses the SimCLR preset with mild crops and CPC takes
the first view only.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "cpc"
    config.method_kwargs = {
        "patch_size": 8,
        "patch_stride": 4,
        "prediction_steps": 3,
        "context_blocks": 2,
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.kwargs = {"crop_scale": (0.8, 1.0), "color_strength": 0.25}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 64
    config.epochs = 2
    config.time_budget_minutes = 10.0
    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_epochs = 0.25
    return config
