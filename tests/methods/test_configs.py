"""Every Fashion-MNIST config in configs/ trains, probes and round-trips at test size.

One parametrised test replaces the copy each method's test file had: ``shrink_config`` keeps a
config's method, augmentation, optimizer and schedules and shrinks only the sizes.
"""

import glob
import json
import os

import keras
import numpy as np
import pytest

from keras_ssl import experiment, methods
from keras_ssl.testing.configs import SMALL_BACKBONES, load_config, shrink_config

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
FASHION_MNIST_CONFIGS = sorted(
    os.path.basename(path)[: -len("_fashion_mnist.py")]
    for path in glob.glob(os.path.join(CONFIGS, "*_fashion_mnist.py"))
)


def test_every_registered_method_has_a_fashion_mnist_config():
    photo_methods = {"colorization", "split_brain"}  # colour methods: configs/*_photos.py
    assert set(FASHION_MNIST_CONFIGS) == set(methods.REGISTRY) - photo_methods


# One config per family in the default run (contrastive, EMA teacher, multi-crop, masked
# reconstruction, clustering); the others, 5-15 s each, with -m slow. Each method's battery
# trains the class itself in the default run.
DEFAULT_RUN_CONFIGS = {"simclr", "byol", "dino", "mae", "deepcluster"}


@pytest.mark.parametrize(
    "name",
    [
        name if name in DEFAULT_RUN_CONFIGS else pytest.param(name, marks=pytest.mark.slow)
        for name in FASHION_MNIST_CONFIGS
    ],
)
def test_trains_from_its_config(name, tmp_path):
    config = load_config(os.path.join(CONFIGS, f"{name}_fashion_mnist.py"))
    assert config.method == name and config.data.dataset == "fashion_mnist"
    full = config.to_dict()
    shrink_config(config)
    # Only sizes changed: every other top-level choice of the config is the file's.
    for key in ("method", "backbone", "augment", "optimizer", "weight_decay"):
        if key in full:
            assert config.to_dict()[key] == full[key], key
    model, history = experiment.train(config, str(tmp_path), verbose=0)
    assert isinstance(model, methods.REGISTRY[name])
    assert int(model.optimizer.iterations) == 256 // 64
    for key, values in history.items():
        assert np.all(np.isfinite(values)), (key, values)
    assert 0 <= history["knn_accuracy"][-1] <= 1 and 0 <= history["linear_accuracy"][-1] <= 1
    if callable(getattr(model, "predict_clusters", None)):  # IIC, DeepCluster: clustering probe
        assert 0 <= history["clustering_accuracy"][-1] <= 1
    restored = keras.saving.load_model(os.path.join(tmp_path, "model.keras"))
    assert type(restored) is type(model)
    assert _as_json(restored.get_config()) == _as_json(model.get_config())
    assert len(restored.weights) == len(model.weights)
    for saved, loaded in zip(model.weights, restored.weights):
        expected = keras.ops.convert_to_numpy(saved)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded), expected, saved.path)


def _as_json(config):
    return json.loads(json.dumps(config, sort_keys=True, default=str))  # tuples -> lists


def test_shrink_config_sizes_and_overrides():
    config = load_config(os.path.join(CONFIGS, "byol_fashion_mnist.py"))
    shrink_config(config, projection_dim=4)
    assert config.backbone_kwargs.to_dict() == SMALL_BACKBONES["small_resnet"]
    assert config.method_kwargs.projection_hidden_dim == 16
    assert config.method_kwargs.projection_dim == 4  # the caller's value wins
    assert config.method_kwargs.momentum == 0.99  # not a size: kept
    assert (config.data.train_examples, config.batch_size, config.epochs) == (256, 64, 1)
    assert config.precision == "float32" and config.export is False


def test_load_config_errors(tmp_path):
    with pytest.raises(ValueError, match=r"No config file at .*nope\.py.*Fix"):
        load_config(tmp_path / "nope.py")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ValueError, match=r"defines no get_config\(\).*Fix"):
        load_config(empty)
