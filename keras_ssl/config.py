"""Experiment configuration: the schema every config file starts from, and its validation.

A config file (``configs/*.py``) defines ``get_config()`` returning :func:`default_config` with
fields changed. Any field can be overridden on the command line (``--config.batch_size=512``).
Fields that the schema does not know are errors, not silently ignored typos.
"""

import difflib

import ml_collections
from ml_collections.config_dict import placeholder

from keras_ssl.evaluation.knn import TEMPERATURE as KNN_TEMPERATURE


def default_config():
    """The complete schema with defaults (SimCLR, small ResNet, Fashion-MNIST)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.deterministic = False  # deterministic TF kernels: bit-identical reruns and resumes
    # Method: keras_ssl.methods.REGISTRY name and constructor arguments.
    config.method = "simclr"
    config.method_kwargs = ml_collections.ConfigDict({"temperature": 0.5, "projection_dim": 128})
    # Encoder: keras_ssl.backbones.REGISTRY name and constructor arguments.
    config.backbone = "small_resnet"
    config.backbone_kwargs = ml_collections.ConfigDict()
    # Data.
    config.data = ml_collections.ConfigDict(
        {
            "dataset": "fashion_mnist",  # or "tfds:<name>" or "folder:<path>"
            "data_dir": placeholder(str),  # explicit data location (overrides the search order)
            # Fashion-MNIST only: force "path", "debian", "tfds" or "embedded" (None:
            # $KERAS_SSL_DATA_SOURCE if set, else the automatic order of datasets.fashion_mnist).
            "source": placeholder(str),
            "image_size": placeholder(int),  # resize to (size, size); None keeps the dataset's size
            "train_examples": placeholder(int),  # SSL training images (None: the whole train split)
            "probe_train_examples": 10000,  # labelled train images for kNN / linear probes
            "probe_test_examples": placeholder(
                int
            ),  # test images for probes (None: the whole test split)
        }
    )
    # Augmentation: a name in keras_ssl.augment.PRESETS and the preset's arguments.
    config.augment = ml_collections.ConfigDict(
        {"preset": "simclr", "kwargs": ml_collections.ConfigDict()}
    )
    # Optimisation.
    config.batch_size = 256
    config.epochs = 10
    # Or a length in optimizer steps (with epochs=0): epochs = round(train_steps / steps per
    # epoch), at least 1, so a recipe trains as long on a 2,000-image subset as on the full set.
    config.train_steps = 0
    config.time_budget_minutes = placeholder(float)  # stop training after this many minutes
    config.optimizer = ml_collections.ConfigDict(
        {
            "name": "adamw",  # lars, or any keras.optimizers name: adamw, sgd, lamb, adam ...
            "learning_rate": 1e-3,  # peak learning rate at reference_batch_size
            "scaling": "none",  # none | linear (lr * B / ref) | sqrt (lr * sqrt(B / ref))
            "reference_batch_size": 256,
            "weight_decay": 1e-4,
            "momentum": 0.9,  # used by sgd and lars
            "warmup_epochs": 1.0,
            "schedule": "cosine",  # "cosine" (warm-up + cosine decay) or "constant"
        }
    )
    config.precision = "auto"  # auto | float32 | mixed_bfloat16 | mixed_float16
    config.steps_per_execution = 1
    config.jit_compile = "auto"
    # Monitoring.
    config.probes = ml_collections.ConfigDict(
        {
            "knn_every_epochs": 1,
            "knn_k": 20,
            "knn_temperature": KNN_TEMPERATURE,
            "linear_every_epochs": 0,  # 0: only after the last epoch
            "linear_epochs": 50,
            "collapse_every_epochs": 1,
        }
    )
    config.export = True
    return config


def validate(config, schema=None, prefix="config"):
    """Raises ``ValueError`` for fields of ``config`` that the schema does not define.

    The free-form argument dicts (``method_kwargs``, ``backbone_kwargs``, ``augment.kwargs``)
    are checked against the constructor they feed when the experiment is built.
    """
    schema = default_config() if schema is None else schema
    free_form = {"method_kwargs", "backbone_kwargs", "kwargs"}
    for key in config.keys():
        if key not in schema:
            suggestion = difflib.get_close_matches(key, list(schema.keys()), n=1)
            hint = f" Did you mean {prefix}.{suggestion[0]}?" if suggestion else ""
            raise ValueError(
                f"Unknown config field {prefix}.{key}; expected one of "
                f"{sorted(schema.keys())}.{hint} Fix: correct the name in the config file or "
                "the --config override."
            )
        value = config[key]
        if key not in free_form and isinstance(value, ml_collections.ConfigDict):
            validate(value, schema[key], f"{prefix}.{key}")
