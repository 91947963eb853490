"""keras_ssl: self-supervised learning for images with Keras 3 and TensorFlow.

Modules: ``methods`` (SimCLR, MoCo, BYOL, DINO, ...), ``backbones``, ``augment``, ``pretext``
(label-making transforms), ``losses``, ``layers``, ``datasets``, ``callbacks`` (kNN / linear
probes, collapse monitor), ``evaluation``, ``optimizers``, ``distribute``, ``precision``,
``export`` (SavedModel, TFLite), ``pretrained`` (encoders by name), ``retrieval`` (index,
search, metrics).
"""

from keras_ssl._tf_console import quiet_import

with quiet_import():  # TensorFlow's start-up notices stay off the console (KERAS_SSL_TF_LOGS=1)
    import tensorflow as _tf

    _tf.config.list_physical_devices()  # CUDA probing happens here, inside the block
    from keras_ssl import (
        augment,
        backbones,
        callbacks,
        clustering,
        datasets,
        distribute,
        evaluation,
        export,
        layers,
        losses,
        methods,
        optimizers,
        precision,
        pretext,
        pretrained,
        retrieval,
    )

__version__ = "0.1.0"

__all__ = [
    "augment",
    "backbones",
    "callbacks",
    "clustering",
    "datasets",
    "distribute",
    "evaluation",
    "export",
    "layers",
    "losses",
    "methods",
    "optimizers",
    "precision",
    "pretext",
    "pretrained",
    "retrieval",
]
