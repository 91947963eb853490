import pytest

from keras_ssl import config as config_lib


def test_simclr_benchmark_config_uses_the_full_data_and_overrides(load_benchmark):
    bench = load_benchmark("simclr_fashion_mnist")
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


def test_simclr_benchmark_rejects_unknown_fields(load_benchmark):
    bench = load_benchmark("simclr_fashion_mnist")
    with pytest.raises(ValueError, match="config.optimizer.lr"):
        bench.benchmark_config(2, 1.0, ["optimizer.lr=0.1"])
