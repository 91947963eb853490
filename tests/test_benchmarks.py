import importlib.util
import os

import pytest

from keras_ssl import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "benchmarks", f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_simclr_benchmark_config_uses_the_full_data_and_overrides():
    bench = load("simclr_fashion_mnist")
    config = bench.benchmark_config(
        20, 45.0, ["backbone_kwargs.widths=(8, 16)", "augment.kwargs.crop_scale=(0.3, 1.0)"]
    )
    config_lib.validate(config)
    assert config.epochs == 20 and config.time_budget_minutes == 45.0
    assert config.data.train_examples is None and config.data.probe_train_examples is None
    assert tuple(config.backbone_kwargs.widths) == (8, 16)
    assert tuple(config.augment.kwargs.crop_scale) == (0.3, 1.0)
    assert config.probes.knn_every_epochs == 4
    default = bench.benchmark_config(14, 35.0)
    assert tuple(default.backbone_kwargs.widths) == (32, 64, 128)


def test_simclr_benchmark_rejects_unknown_fields():
    bench = load("simclr_fashion_mnist")
    with pytest.raises(ValueError, match="config.optimizer.lr"):
        bench.benchmark_config(2, 1.0, ["optimizer.lr=0.1"])
