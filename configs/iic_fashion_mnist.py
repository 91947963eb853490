"""IIC on Fashion-MNIST with a small ResNet.

    keras-ssl train --config configs/iic_fashion_mnist.py --workdir runs/iic

Invariant Information Clustering (Ji et al. 2019, arXiv:1807.06653) as the paper runs it on
MNIST: a 10-cluster main head and a 50-cluster over-clustering head, 5 sub-heads each, Adam at
learning rate 1e-4 scaled up for the short CPU budget. Views are random resized crops (area
0.5-1), flips and brightness/contrast jitter (the paper: crops, flips and colour jitter).
Clustering accuracy (Hungarian matching) of the best sub-head:
``keras_ssl.evaluation.clustering.clustering_accuracy(labels, model.predict_clusters(x))``.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "iic"
    config.method_kwargs = {
        "num_clusters": 10,
        "overclustering_clusters": 50,
        "num_heads": 5,
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.preset = "simclr"
    config.augment.kwargs = {"crop_scale": (0.5, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 256
    config.epochs = 10
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.weight_decay = 0.0
    config.optimizer.warmup_epochs = 0.0
    return config
