"""The registry of pretrained encoder weights: what each name is, where its file is, and how good.

Each entry names the method that trained it, the encoder architecture (a name in
``keras_ssl.backbones.REGISTRY`` and its arguments), the input shape, a file shipped in
``keras_ssl/pretrained/weights/`` or a URL (downloaded once and cached), the file's SHA-256
and the probe accuracies measured by the command that made it
(``python -m keras_ssl.pretrained.build --name NAME``, which prints the entry).
"""

import dataclasses
import re

from keras_ssl import backbones

_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z0-9][a-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
    """One set of pretrained encoder weights.

    Args:
        name: the registry key (lower-case letters, digits and underscores).
        method: the ``keras_ssl.methods.REGISTRY`` name of the method that trained it.
        architecture: the ``keras_ssl.backbones.REGISTRY`` name of the encoder.
        architecture_kwargs: the keyword arguments the encoder was built with (besides
            ``input_shape``).
        input_shape: ``(height, width, channels)`` of the images the encoder takes (``float32``
            in ``[0, 1]``, as in training).
        sha256: lower-case hex SHA-256 of the ``.weights.h5`` file.
        file: the file's name in ``keras_ssl/pretrained/weights/`` (exactly one of ``file`` and
            ``url``).
        url: where to download the file from (``http``, ``https`` or ``file``); it is cached
            by ``keras.utils.get_file``.
        accuracies: probe accuracies measured when the weights were made, e.g.
            ``{"fashion_mnist_test": {"knn": 0.85, "linear": 0.84}}``.
        description: what was trained on what, for how long.
        command: the command that reproduces the weights.

    Raises:
        ValueError: for a malformed name, an unknown architecture, a bad input shape or hash,
            or not exactly one of ``file`` and ``url``.
    """

    name: str
    method: str
    architecture: str
    architecture_kwargs: dict
    input_shape: tuple
    sha256: str
    file: str | None = None
    url: str | None = None
    accuracies: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    command: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"A weights name must be lower-case letters, digits and underscores; received "
                f"{self.name!r}. Fix: rename it, e.g. 'simclr_fashion_mnist'."
            )
        if self.architecture not in backbones.REGISTRY:
            raise ValueError(
                f"Weights {self.name!r}: unknown architecture {self.architecture!r}; expected one "
                f"of {sorted(backbones.REGISTRY)}. Fix: use a keras_ssl.backbones.REGISTRY name."
            )
        shape = tuple(self.input_shape) if isinstance(self.input_shape, (tuple, list)) else ()
        if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(
                f"Weights {self.name!r}: `input_shape` must be three positive integers "
                f"(height, width, channels); received {self.input_shape!r}. Fix: e.g. (28, 28, 1)."
            )
        object.__setattr__(self, "input_shape", shape)
        if not isinstance(self.sha256, str) or not _SHA256.fullmatch(self.sha256):
            raise ValueError(
                f"Weights {self.name!r}: `sha256` must be 64 lower-case hex digits; received "
                f"{self.sha256!r}. Fix: pass hashlib.sha256(file bytes).hexdigest()."
            )
        if (self.file is None) == (self.url is None):
            raise ValueError(
                f"Weights {self.name!r}: exactly one of `file` and `url` must be given; received "
                f"file={self.file!r}, url={self.url!r}. Fix: `file` for weights shipped in "
                "keras_ssl/pretrained/weights/, `url` for weights downloaded on first use."
            )
        if self.file is not None and ("/" in self.file or not self.file.endswith(".weights.h5")):
            raise ValueError(
                f"Weights {self.name!r}: `file` must be a bare file name ending in '.weights.h5'; "
                f"received {self.file!r}. Fix: put the file in keras_ssl/pretrained/weights/."
            )
        object.__setattr__(self, "architecture_kwargs", dict(self.architecture_kwargs))
        object.__setattr__(self, "accuracies", dict(self.accuracies))


# Printed by `python -m keras_ssl.pretrained.build --name NAME` (see that module for the recipe).
REGISTRY = {
    entry.name: entry
    for entry in (
        WeightsEntry(
            name="simclr_fashion_mnist",
            method="simclr",
            architecture="small_resnet",
            architecture_kwargs={"widths": (16, 32, 64)},
            input_shape=(28, 28, 1),
            sha256="3c37bd8a68686a84fb2c17461596340a07e5660c97c7af1eee9831f967d9828a",
            file="simclr_fashion_mnist.weights.h5",
            accuracies={
                "fashion_mnist_test": {"knn": 0.8444, "linear": 0.836},
                "embedded_subset_test": {"knn": 0.814},
            },
            description=(
                "simclr from configs/simclr_fashion_mnist.py, 5 epochs of 937 steps at batch 64 on "
                "60,000 Fashion-MNIST training images (debian), seed 0"
            ),
            command="python -m keras_ssl.pretrained.build --name simclr_fashion_mnist",
        ),
        WeightsEntry(
            name="vicreg_fashion_mnist",
            method="vicreg",
            architecture="small_resnet",
            architecture_kwargs={"widths": (16, 32, 64)},
            input_shape=(28, 28, 1),
            sha256="6666f052d234a0625706e09002b86ec818a2a6c43a82fbabc8b03ed70123618f",
            file="vicreg_fashion_mnist.weights.h5",
            accuracies={
                "fashion_mnist_test": {"knn": 0.8532, "linear": 0.8396},
                "embedded_subset_test": {"knn": 0.806},
            },
            description=(
                "vicreg from configs/vicreg_fashion_mnist.py, 3 epochs of 468 steps at batch 128 "
                "on 60,000 Fashion-MNIST training images (debian), seed 0"
            ),
            command="python -m keras_ssl.pretrained.build --name vicreg_fashion_mnist",
        ),
    )
}


def register(entry, overwrite=False):
    """Adds ``entry`` to the registry, so that :func:`keras_ssl.pretrained.load` finds it.

    Use it for your own weights, shipped as a file next to your code (``url="file://..."``) or
    hosted at a URL.

    Args:
        entry: a :class:`WeightsEntry`.
        overwrite: replace an entry of the same name.

    Returns:
        The entry.

    Raises:
        ValueError: for a non-entry, or a taken name without ``overwrite``.
    """
    if not isinstance(entry, WeightsEntry):
        raise ValueError(
            f"`entry` must be a keras_ssl.pretrained.WeightsEntry; received "
            f"{type(entry).__name__}. Fix: build one with WeightsEntry(name=..., ...)."
        )
    if entry.name in REGISTRY and not overwrite:
        raise ValueError(
            f"Weights {entry.name!r} are already registered; expected a new name. Fix: choose "
            "another name, or pass overwrite=True to replace them."
        )
    REGISTRY[entry.name] = entry
    return entry


def list_weights(method=None):
    """The names of the registered weights, sorted.

    Args:
        method: only those trained by this method (a ``keras_ssl.methods.REGISTRY`` name).

    Returns:
        A list of names to pass to :func:`keras_ssl.pretrained.load`.
    """
    return sorted(name for name, e in REGISTRY.items() if method is None or e.method == method)


def get_entry(name):
    """The :class:`WeightsEntry` registered as ``name``.

    Raises:
        ValueError: for a name that is not registered (the message lists the names).
    """
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(
            f"Unknown pretrained weights {name!r}; expected one of {list_weights()}. "
            "Fix: pass one of these names (keras_ssl.pretrained.list_weights() lists them)."
        )
    return REGISTRY[name]
