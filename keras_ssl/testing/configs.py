"""Config files made test-sized: load a ``configs/*.py`` file and shrink it to a few seconds.

``shrink_config`` keeps everything that makes a config that config (method, augmentation,
optimizer, schedules, losses) and shrinks only sizes: the data (the embedded Fashion-MNIST
subset), the backbone, the heads, queues and clusterings, one epoch, float32, the probes::

    config = shrink_config(load_config("configs/byol_fashion_mnist.py"))
    model, history = experiment.train(config, workdir, verbose=0)
"""

import importlib.util
import os

from keras_ssl.datasets import fashion_mnist

#: Backbone arguments of a test-sized encoder, per ``config.backbone``.
SMALL_BACKBONES = {
    "small_resnet": {"widths": (4, 8)},
    "vit": {"dim": 16, "depth": 1, "num_heads": 2},
}

#: Test sizes of the method arguments that set a width, a depth or a count; a config's
#: ``method_kwargs`` entry with one of these names is replaced, others are kept.
SMALL_METHOD_KWARGS = {
    "projection_hidden_dim": 16,
    "prediction_hidden_dim": 16,
    "projection_dim": 8,
    "hidden_dim": 16,
    "bottleneck_dim": 8,
    "out_dim": 32,
    "num_prototypes": 16,
    "head_dim": 8,
    "head_hidden_dims": (16,),
    "latent_dim": 8,
    "decoder_widths": (8, 4),
    "generator_widths": (8, 4),
    "discriminator_widths": (4, 8),
    "discriminator_hidden_dim": 16,
    "decoder_dim": 16,
    "decoder_depth": 1,
    "decoder_num_heads": 2,
    "queue_size": 256,
    "num_clusters": 20,
    "clustering_examples": 300,
}


def load_config(path):
    """The ``ml_collections.ConfigDict`` of a config file's ``get_config()``.

    Args:
        path: a ``.py`` config file (e.g. ``"configs/simclr_fashion_mnist.py"``).

    Raises:
        ValueError: if ``path`` is not a file or defines no ``get_config``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            f"No config file at {path!r}; expected a .py file defining get_config(). "
            "Fix: pass the path of a file in configs/, e.g. configs/simclr_fashion_mnist.py."
        )
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "get_config", None)):
        raise ValueError(
            f"The config file {path!r} defines no get_config(); expected a function returning "
            "an ml_collections.ConfigDict. Fix: add one, as the files in configs/ do."
        )
    return module.get_config()


def shrink_config(config, train_examples=256, batch_size=64, epochs=1, **method_kwargs):
    """Shrinks ``config`` in place to a test-sized run and returns it.

    Fashion-MNIST configs read the embedded subset (``train_examples`` training images, 200 / 50
    probe images); the backbone takes :data:`SMALL_BACKBONES`'s sizes (its other arguments,
    such as a ViT's patch size, are kept); every ``method_kwargs`` entry
    named in :data:`SMALL_METHOD_KWARGS` takes that size, then ``method_kwargs`` given here
    override. Training runs ``epochs`` epochs of ``batch_size`` in float32 without a time
    budget, export or collapse monitor; the linear probe trains 1 epoch.

    Raises:
        ValueError: for a backbone without a test size.
    """
    if config.backbone not in SMALL_BACKBONES:
        raise ValueError(
            f"No test size for backbone {config.backbone!r}; expected one of "
            f"{sorted(SMALL_BACKBONES)}. Fix: add its arguments to SMALL_BACKBONES."
        )
    if config.data.dataset == "fashion_mnist":
        config.data.data_dir = str(fashion_mnist.EMBEDDED_DIR)
        config.data.train_examples = train_examples
        config.data.probe_train_examples = 200
        config.data.probe_test_examples = 50
    config.backbone_kwargs = {**config.backbone_kwargs, **SMALL_BACKBONES[config.backbone]}
    present = config.method_kwargs
    small = {key: value for key, value in SMALL_METHOD_KWARGS.items() if key in present}
    config.method_kwargs.update({**small, **method_kwargs})
    config.batch_size = batch_size
    config.epochs = epochs
    config.train_steps = 0
    config.precision = "float32"
    config.time_budget_minutes = None
    config.export = False
    config.probes.linear_epochs = 1
    config.probes.collapse_every_epochs = 0
    return config
