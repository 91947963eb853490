"""DeepCluster on Fashion-MNIST with a small ResNet.

    keras-ssl train --config configs/deepcluster_fashion_mnist.py --workdir runs/deepcluster

DeepCluster (Caron et al. 2018, arXiv:1807.05520): before every epoch, the encoder embeds all
60 000 un-augmented training images, and k-means with k = 100 (10x the classes, as the paper's
10 000 for ImageNet's 1000) clusters their PCA-whitened (32 of the encoder's 64 dimensions),
L2-normalised features; every augmented view of an image is then trained on that image's
cluster by a re-initialised linear classifier, with per-example weights that balance the
clusters. Random resized crops (area 0.5-1) and flips, SGD with momentum 0.9, learning rate
0.05 and weight decay 1e-5 as in the paper. Every schedule is in epochs: clustering every
epoch, no warm-up.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "deepcluster"
    config.method_kwargs = {
        "num_clusters": 100,
        "pca_dim": 32,
        "clustering_examples": 60000,  # room for every training image's assignment
    }
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.augment.preset = "crop_flip"
    config.augment.kwargs = {"crop_scale": (0.5, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 256
    config.epochs = 10
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 0.05
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 1e-5
    config.optimizer.warmup_epochs = 0.0
    return config
