import pytest


def test_throughput_runs_a_method_worker_and_formats_the_tables(load_benchmark):
    throughput = load_benchmark("throughput")
    rows = throughput._run_worker(
        "method",
        method="simclr",
        backbone="small_resnet",
        precisions=["float32", "mixed_bfloat16"],
        xla_modes=[False],
        steps=1,
        repeats=2,
        warmup_steps=1,
        image_size=8,
        batch=8,
    )
    assert [r["precision"] for r in rows] == ["float32", "mixed_bfloat16"]
    row = rows[0]
    assert row["method"] == "simclr" and row["views"] == 2 and row["images_per_s"] > 0
    assert row["spread"][0] <= row["images_per_s"] <= row["spread"][1]
    assert row["peak_rss_mib"] > 100 and row["warmup_s"] > 0
    assert rows[0]["params"] == rows[1]["params"]
    pipeline = throughput.measure_pipeline("simclr", image_size=8, batch=8, batches=2)
    assert pipeline["images_per_s"] > 0
    slower = dict(row, method="byol", images_per_s=row["images_per_s"] / 2)
    table = throughput.format_step_table([row, slower])
    assert "| simclr | float32 | off | 1 |" in table and "| 2.00x |" in table
    ratios = throughput.format_pipeline_table(
        [dict(pipeline, images_per_s=4 * row["images_per_s"])], [row], {"simclr": "simclr"}
    )
    assert "simclr 4.0x" in ratios


def test_throughput_rejects_unknown_methods(monkeypatch, load_benchmark):
    throughput = load_benchmark("throughput")
    with pytest.raises(ValueError, match="nope"):
        throughput.main(["--methods", "simclr,nope"])


def test_throughput_finds_every_registered_method_config(load_benchmark):
    from keras_ssl import methods

    throughput = load_benchmark("throughput")
    for name in methods.REGISTRY:  # colour methods ship configs/<name>_photos.py
        assert throughput._load_config(name).method == name
    with pytest.raises(ValueError, match="No config for method 'nope'"):
        throughput._load_config("nope")


def test_step_jobs_put_all_precisions_in_one_process_and_extras_only_for_simclr(load_benchmark):
    throughput = load_benchmark("throughput")
    precisions = ["float32", "mixed_bfloat16"]
    jobs = throughput.step_jobs(["byol", "simclr"], precisions, [False])
    assert jobs == [
        ("byol", precisions, [False], 1),
        ("simclr", precisions, [False, True], 1),
        ("simclr", precisions, [False], 2),
    ]
    assert throughput.step_jobs(["simclr"], precisions, [False], extras=False) == [
        ("simclr", precisions, [False], 1)
    ]
    assert len(throughput.step_jobs(["byol", "moco"], precisions, [False, True])) == 2


def test_argument_parsing_defaults_and_errors(load_benchmark):
    throughput = load_benchmark("throughput")
    args = throughput.parse_args([])
    assert (args.steps, args.repeats, args.warmup_steps, args.batch) == (4, 3, 2, 128)
    assert args.precisions == "float32,mixed_bfloat16" and not args.compare_pytorch
    args = throughput.parse_args(["--steps-per-execution", "2", "--compare-pytorch"])
    assert args.steps_per_execution == 2 and args.compare_pytorch
    with pytest.raises(ValueError, match=r"--steps \(3\) .* multiples of --steps-per-execution"):
        throughput.parse_args(["--steps", "3", "--steps-per-execution", "2"])
    with pytest.raises(ValueError, match="--repeats must be at least 1; received 0"):
        throughput.parse_args(["--repeats", "0"])


def test_median_and_spread(load_benchmark):
    throughput = load_benchmark("throughput")
    assert throughput.median_and_spread([3.0, 1.0, 2.0]) == (2.0, [1.0, 3.0])
    assert throughput.median_and_spread([4.0, 1.0]) == (2.5, [1.0, 4.0])


def test_comparison_summary_ratio_and_table(load_benchmark):
    throughput = load_benchmark("throughput")
    runs = [
        {"side": "keras_ssl", "precision": "float32", "images_per_s": 30.0, "params": 11},
        {"side": "pytorch", "precision": "float32", "images_per_s": 20.0, "params": 11},
        {"side": "pytorch", "precision": "float32", "images_per_s": 24.0, "params": 11},
        {"side": "keras_ssl", "precision": "float32", "images_per_s": 36.0, "params": 11},
        {"side": "keras_ssl", "precision": "float32", "images_per_s": 60.0, "params": 11},
    ]
    (row,) = throughput.summarize_comparison(runs)
    assert row["keras_ssl"] == [30.0, 36.0, 60.0] and row["pytorch"] == [20.0, 24.0]
    assert row["keras_ssl_median"] == 36.0 and row["pytorch_median"] == 22.0
    assert row["ratio"] == pytest.approx(36.0 / 22.0)
    table = throughput.format_comparison_table([dict(row, keras_ssl_params=11497664)])
    assert table.splitlines()[2] == (
        "| float32 | 36.0 (30.0, 36.0, 60.0) | 22.0 (20.0, 24.0) | 1.64x | 11,497,664 / 11 |"
    )
    with pytest.raises(ValueError, match="No pytorch run for precision 'float32'"):
        throughput.summarize_comparison(runs[:1])


def test_compare_pytorch_without_torch_says_how_to_install(monkeypatch, load_benchmark):
    throughput = load_benchmark("throughput")
    monkeypatch.setattr(throughput, "torch_available", lambda: False)
    with pytest.raises(ValueError, match="pip install torch==2.13.0"):
        throughput.main(["--methods", "simclr", "--compare-pytorch"])


def test_torch_twin_matches_keras_parameter_count_and_loss(load_benchmark):
    torch = pytest.importorskip("torch")
    import numpy as np

    from keras_ssl.backbones import ResNet18
    from keras_ssl.losses import nt_xent
    from keras_ssl.methods import SimCLR

    torch_simclr = load_benchmark("torch_simclr")
    keras_model = SimCLR(ResNet18(input_shape=(32, 32, 3)), temperature=0.2)
    keras_params = int(sum(np.prod(w.shape) for w in keras_model.trainable_weights))
    assert torch_simclr.count_parameters(torch_simclr.SimCLRResNet18()) == keras_params
    rng = np.random.default_rng(0)
    z_a, z_b = rng.normal(size=(2, 6, 4)).astype("float32")
    expected = float(np.mean(nt_xent(z_a, z_b, temperature=0.2)))
    loss = torch_simclr.nt_xent(torch.from_numpy(z_a), torch.from_numpy(z_b), 0.2)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="received 'float16'"):
        torch_simclr.measure_step(precision="float16")


def test_speed_ablation_variants_change_one_thing_each(load_benchmark):
    ablation = load_benchmark("speed_ablation")
    assert ablation.settings_of(0)["two_pass"] and not ablation.settings_of(0)["fused_bn"]
    default = ablation.settings_of(3)
    assert default == dict(ablation.BASE_SETTINGS, precision="mixed_bfloat16")
    assert ablation.settings_of(9) == dict(default, input="in-step")
    for index, (_, base, _, change) in enumerate(ablation.VARIANTS):
        if base is not None:
            assert base < index and ablation.settings_of(base) != ablation.settings_of(index)
            assert set(change) <= set(ablation.BASE_SETTINGS)
    with pytest.raises(ValueError, match=r"--variants \[99\] out of range; expected indices 0-9"):
        ablation.parse_args(["--variants", "0,99"])


@pytest.mark.slow  # runs every ablation variant; the method worker test stays in the default run
def test_speed_ablation_worker_and_table(load_benchmark):
    ablation = load_benchmark("speed_ablation")
    rows = []
    for index in (0, 9):  # two encoder passes + Keras BN; augmentation inside the step
        row = ablation.throughput._run_worker(
            "variant",
            script=ablation.__file__,
            settings=ablation.settings_of(index),
            image_size=8,
            batch=8,
            steps=1,
            repeats=1,
        )
        change, base, default, _ = ablation.VARIANTS[index]
        rows.append(dict(row, index=index, change=change, base=base, default=default))
    assert rows[0]["precision"] == "float32" and rows[1]["precision"] == "mixed_bfloat16"
    assert rows[0]["params"] == rows[1]["params"] and all(r["images_per_s"] > 0 for r in rows)
    doubled = dict(rows[0], index=1, base=0, default=True, images_per_s=2 * rows[0]["images_per_s"])
    table = ablation.format_table([rows[0], doubled]).splitlines()
    assert table[2].endswith("| - | 1.00x | no |") and table[3].endswith("| 2.00x | 2.00x | yes |")
