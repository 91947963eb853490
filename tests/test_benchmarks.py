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


def test_quality_benchmark_applies_the_shared_budget(load_benchmark):
    quality = load_benchmark("quality")
    config = quality.method_config("simclr", epochs=3, minutes=2.0)
    assert config.method == "simclr" and config.epochs == 3 and config.time_budget_minutes == 2.0
    assert tuple(config.backbone_kwargs.widths) == (16, 32, 64) and config.batch_size == 128
    with pytest.raises(ValueError, match="No config for method 'nope'"):
        quality.method_config("nope", 1, 1.0)


def test_quality_probe_row_on_separable_features(load_benchmark):
    quality = load_benchmark("quality")
    rng = __import__("numpy").random.default_rng(0)
    y_train, y_test = rng.integers(0, 3, 600), rng.integers(0, 3, 90)
    centres = rng.normal(size=(3, 5)) * 10
    train = (centres[y_train] + rng.normal(size=(600, 5))).astype("float32")
    test = (centres[y_test] + rng.normal(size=(90, 5))).astype("float32")
    row = quality.probe(train, test, y_train, y_test)
    assert set(row) == {"knn", "linear", "linear_0.01", "linear_0.1"}
    assert min(row.values()) > 0.95
    row.update(method="m", backbone="b", epochs="1/1", batch=8, minutes="0.1")
    table = quality.format_table([row])
    assert table.splitlines()[2].startswith("| m | b | 1/1 | 8 | 0.1 |")
    assert table.splitlines()[2].endswith("| - |")
    row["clustering"] = 0.51234
    assert quality.format_table([row]).splitlines()[2].endswith("| 0.5123 |")


def test_quality_skips_colour_methods_with_the_reason(load_benchmark):
    quality = load_benchmark("quality")
    assert quality.needs_rgb("colorization") and not quality.needs_rgb("simclr")
    table = quality.format_table([{"method": "colorization", "skipped": "needs colour"}])
    assert table.splitlines()[2] == "| colorization | not run: needs colour |" + " - |" * 8
    assert table.splitlines()[2].count("|") == table.splitlines()[0].count("|")
