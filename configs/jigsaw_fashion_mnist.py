"""Jigsaw puzzles on Fashion-MNIST with a small ResNet per tile.

    keras-ssl train --config configs/jigsaw_fashion_mnist.py --workdir runs/jigsaw

The paper's puzzle (64-px tiles in 75-px cells of a 225-px crop) scaled to 28 px: 9-px cells
(a 27-px grid) and 7-px tiles, so each tile moves by up to 2 px inside its cell and neighbours
are 0-4 px apart. 100 permutations chosen greedily for maximal Hamming distance (minimal
distance 6); every tile is standardised as in the paper. The backbone is built for 28x28 images
and rebuilt for 7x7 tiles with the same layers; the exported encoder is that network applied to
whole images. The classifier on the 9 concatenated tile features has one 512-wide hidden layer
(the paper's fc7 is 4096 wide on AlexNet).
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "jigsaw"
    config.method_kwargs = {
        "num_permutations": 100,
        "tile_size": 7,
        "cell_size": 9,
        "normalize_tiles": True,
        "head_hidden_dims": (512,),
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.preset = "crop_flip"
    config.augment.kwargs = {"crop_scale": (0.7, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 128
    config.epochs = 3
    config.time_budget_minutes = 10.0
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_epochs = 0.25
    return config
