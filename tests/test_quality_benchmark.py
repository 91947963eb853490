"""benchmarks/quality.py: shared budget, per-run cache, budget checks, aggregate and table."""

import json
import os

import numpy as np
import pytest

SMOKE = [
    "--epochs",
    "1",
    "--train-examples",
    "256",
    "--probe-train-examples",
    "300",
    "--probe-test-examples",
    "200",
]


@pytest.fixture
def quality(load_benchmark):
    return load_benchmark("quality")


def write_result(quality, out, kind, seed, budget, metrics, wall=100.0, cpu=150.0, key=None):
    """A hand-written cached result, as a worker writes it."""
    result = {
        "schema": quality.SCHEMA,
        "kind": kind,
        "seed": seed,
        **(key or quality.expected_key(kind, budget, seed)),
        "metrics": metrics,
        "timing": {"wall_seconds": wall, "train_seconds": wall / 2, "cpu_seconds": cpu},
        "git": {"commit": "abc", "dirty": False},
    }
    if kind not in quality.BASELINES:
        result["epochs_completed"] = budget["epochs"]
    path = quality.result_path(str(out), kind, seed)
    quality.write_json_atomic(path, result)
    return path


def accuracies(knn, linear=0.7, low=0.5, mid=0.6, clustering=None):
    return {
        "knn": knn,
        "linear": linear,
        "linear_0.01": low,
        "linear_0.1": mid,
        "clustering": clustering,
    }


def test_method_config_applies_the_shared_budget(quality):
    config = quality.method_config("simclr", epochs=3, minutes=2.0, seed=2)
    assert config.method == "simclr" and config.epochs == 3 and config.time_budget_minutes == 2.0
    assert tuple(config.backbone_kwargs.widths) == (16, 32, 64) and config.batch_size == 128
    assert config.seed == 2 and config.data.train_examples is None and not config.export
    assert config.data.probe_train_examples == 10000 and config.probes.knn_every_epochs == 1
    with pytest.raises(ValueError, match="No config for method 'nope'"):
        quality.method_config("nope", 1, 1.0)


def test_bad_budget_and_lists_name_what_was_received(quality):
    assert quality.make_budget()["epochs"] == 10 and quality.make_budget()["batch"] == 128
    with pytest.raises(ValueError, match=r"--epochs must be an integer >= 1; received 0"):
        quality.make_budget(epochs=0)
    with pytest.raises(ValueError, match=r"--minutes .* received -1"):
        quality.make_budget(minutes=-1)
    assert quality.parse_list("0, 2", "--seeds", int) == [0, 2]
    for text in ("0,0", "a", "-1", ""):
        with pytest.raises(ValueError, match=f"--seeds .* received {text!r}. Fix"):
            quality.parse_list(text, "--seeds", int)
    args = quality.parse_args([])
    assert args.seeds == "0,1,2" and args.epochs == 10 and not args.table_only
    assert args.results.endswith(os.path.join("benchmarks", "results", "quality.json"))


def test_probe_row_on_separable_features(quality):
    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, 3, 600), rng.integers(0, 3, 90)
    centres = rng.normal(size=(3, 5)) * 10
    train = (centres[y_train] + rng.normal(size=(600, 5))).astype("float32")
    test = (centres[y_test] + rng.normal(size=(90, 5))).astype("float32")
    row = quality.probe(train, test, y_train, y_test)
    assert set(row) == {"knn", "linear", "linear_0.01", "linear_0.1"}
    assert min(row.values()) > 0.95


def test_colour_methods_are_listed_as_not_run(quality):
    assert quality.needs_rgb("colorization") and not quality.needs_rgb("simclr")
    with pytest.raises(ValueError, match="only colour methods"):
        quality.main(["--methods", "colorization", "--out", "unused"])


def test_atomic_writes_leave_no_partial_file(quality, tmp_path, monkeypatch):
    path = str(tmp_path / "simclr" / "seed0" / "result.json")
    quality.write_json_atomic(path, {"knn": 0.8})
    # Unserialisable and non-finite payloads fail before anything is written.
    with pytest.raises(TypeError):
        quality.write_json_atomic(path, {"knn": object()})
    with pytest.raises(ValueError):
        quality.write_json_atomic(str(tmp_path / "new.json"), {"knn": float("nan")})

    def disk_full(fd):  # the text is half on disk when the write fails
        raise OSError("No space left on device")

    monkeypatch.setattr(quality.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        quality.write_json_atomic(path, {"knn": 0.9, "linear": 0.8})
    with pytest.raises(OSError, match="No space"):
        quality.write_text_atomic(str(tmp_path / "quality.md"), "| table |")
    with open(path) as f:
        assert json.load(f) == {"knn": 0.8}  # the old result, whole
    assert os.listdir(os.path.dirname(path)) == ["result.json"]
    assert sorted(os.listdir(tmp_path)) == ["simclr"]


def test_cache_status_skips_matching_results_and_reruns_other_budgets(quality, tmp_path):
    budget = quality.make_budget(epochs=10)
    other = quality.make_budget(epochs=3)
    write_result(quality, tmp_path, "simclr", 0, budget, accuracies(0.8))
    write_result(quality, tmp_path, "simclr", 1, other, accuracies(0.7))
    key = {"budget": budget, "config_sha256": "0" * 64}  # a result of an older simclr config
    write_result(quality, tmp_path, "simclr", 2, budget, accuracies(0.7), key=key)
    write_result(quality, tmp_path, "raw_pixels", None, budget, accuracies(0.84))
    # Baselines do not train: a result made at another epochs budget still counts.
    write_result(quality, tmp_path, "random_init", 0, other, accuracies(0.7))
    other_probes = quality.make_budget(epochs=10, probe_test_examples=100)
    write_result(quality, tmp_path, "random_init", 1, other_probes, accuracies(0.7))
    os.makedirs(tmp_path / "random_init" / "seed2")
    (tmp_path / "random_init" / "seed2" / "result.json").write_text('{"knn": 0.')
    rows = quality.plan(str(tmp_path), quality.jobs_for(["simclr"], [0, 1, 2, 3]), budget)
    status = {(kind, seed): (state, detail) for kind, seed, state, detail in rows}
    assert [(kind, seed) for kind, seed, _, _ in rows] == [
        ("raw_pixels", None),
        *[("random_init", seed) for seed in range(4)],
        *[("simclr", seed) for seed in range(4)],
    ]
    assert status["simclr", 0][0] == "cached" and status["simclr", 0][1]["metrics"]["knn"] == 0.8
    assert status["simclr", 1] == ("stale", "another budget: epochs=3 (want 10)")
    assert status["simclr", 2][0] == "stale" and "config changed" in status["simclr", 2][1]
    assert status["simclr", 3] == ("missing", None)
    assert status["raw_pixels", None][0] == "cached"
    assert status["random_init", 0][0] == "cached"
    assert status["random_init", 1] == (
        "stale",
        "another budget: probe_test_examples=100 (want None)",
    )
    assert status["random_init", 2][0] == "stale" and "unreadable" in status["random_init", 2][1]
    assert status["random_init", 3] == ("missing", None)


def test_aggregate_and_table_from_hand_written_results(quality, tmp_path):
    out, budget = str(tmp_path / "cache"), quality.make_budget(epochs=10)
    for seed, (knn, linear, random_knn) in enumerate(
        [(0.80, 0.70, 0.70), (0.82, 0.74, 0.71), (0.84, 0.72, 0.75)]
    ):
        write_result(quality, out, "simclr", seed, budget, accuracies(knn, linear), cpu=60.0)
        write_result(quality, out, "random_init", seed, budget, accuracies(random_knn, 0.65))
    write_result(quality, out, "iic", 0, budget, accuracies(0.74, clustering=0.52), cpu=120.0)
    write_result(quality, out, "iic", 1, quality.make_budget(epochs=3), accuracies(0.9))
    write_result(quality, out, "raw_pixels", None, budget, accuracies(0.8459, 0.8458))
    results = quality.build_results(out, budget)

    assert {"methods", "baselines", "summary", "improvement_over_random_init"} <= set(results)
    assert set(results["methods"]) == {"simclr", "iic"}
    assert set(results["baselines"]) == {"random_init", "raw_pixels"}
    rows = results["methods"]["simclr"]
    assert [row["seed"] for row in rows] == [0, 1, 2]
    assert rows[1] == {
        "seed": 1,
        "knn": 0.82,
        "linear": 0.74,
        "linear_0.01": 0.5,
        "linear_0.1": 0.6,
        "epochs_completed": 10,
        "wall_seconds": 100.0,
        "train_seconds": 50.0,
        "cpu_seconds": 60.0,
        "commit": "abc",
        "config_sha256": quality.expected_key("simclr", budget, 1)["config_sha256"],
    }
    assert [row["seed"] for row in results["baselines"]["raw_pixels"]] == [None]
    simclr = results["summary"]["simclr"]
    # mean and sample std (ddof=1) of 0.80, 0.82, 0.84 and of 0.70, 0.74, 0.72
    assert simclr["knn"]["mean"] == pytest.approx(0.82, abs=1e-12)
    assert simclr["knn"]["std"] == pytest.approx(0.02, abs=1e-12) and simclr["knn"]["n"] == 3
    assert simclr["linear"]["mean"] == pytest.approx(0.72, abs=1e-12)
    assert simclr["linear"]["std"] == pytest.approx(0.02, abs=1e-12)
    assert simclr["linear_0.01"] == {"mean": 0.5, "std": 0.0, "n": 3}
    assert "clustering" not in simclr
    assert results["summary"]["iic"]["clustering"] == {"mean": 0.52, "std": None, "n": 1}
    # paired by seed: knn 0.80-0.70, 0.82-0.71, 0.84-0.75 = 0.10, 0.11, 0.09
    gain = results["improvement_over_random_init"]["simclr"]
    assert gain["knn"]["mean"] == pytest.approx(0.10, abs=1e-12)
    assert gain["knn"]["std"] == pytest.approx(0.01, abs=1e-12)
    assert gain["knn"]["n"] == 3 and gain["knn"]["seeds"] == [0, 1, 2]
    assert gain["linear"]["mean"] == pytest.approx(0.07, abs=1e-12)
    iic_gain = results["improvement_over_random_init"]["iic"]["knn"]
    assert iic_gain["mean"] == pytest.approx(0.04, abs=1e-12) and iic_gain["seeds"] == [0]
    # the epochs=3 IIC run is left out, with the reason
    assert results["excluded"] == [
        {
            "path": os.path.join("iic", "seed1", "result.json"),
            "reason": "another budget: epochs=3 (want 10)",
        }
    ]
    assert "simclr" not in results["pending"] and "byol" in results["pending"]
    assert set(results["not_run"]) == {"colorization", "split_brain"}
    assert results["totals"]["cpu_seconds"] == pytest.approx(3 * 60 + 120 + 4 * 150, abs=1e-9)
    assert results["totals"]["wall_seconds"] == pytest.approx(8 * 100, abs=1e-9)  # 8 runs

    results_path = str(tmp_path / "results" / "quality.json")
    table = quality.write_results(results, results_path, out)
    with open(results_path) as f:
        assert json.load(f) == json.loads(json.dumps(results))
    with open(tmp_path / "results" / "quality.md") as f:
        assert f.read() == table
    with open(os.path.join(out, "quality.md")) as f:
        assert f.read() == table
    lines = table.splitlines()
    assert lines[0].startswith("Shared budget: SmallResNet 16-32-64, batch 128, 10 epochs over")
    body = lines[2:]
    assert all(line.count("|") == body[0].count("|") for line in body)
    by_name = {line.split(" | ")[0][2:]: line for line in body[2:]}
    assert list(by_name)[:2] == ["simclr", "iic"]  # best kNN first
    assert by_name["simclr"] == (
        "| simclr | 3 | 10/10 | 0.8200 ± 0.0200 (3) | 0.7200 ± 0.0200 (3) | 0.5000 ± 0.0000 (3) "
        "| 0.6000 ± 0.0000 (3) | - | +0.1000 ± 0.0100 | +0.0700 ± 0.0200 | 0.8 | 1.0 |"
    )
    assert "| 0.5200 (1) | +0.0400 | +0.0500 |" in by_name["iic"]
    assert by_name["byol"].startswith("| byol | 0 | no result at this budget yet | - |")
    assert by_name["colorization"].startswith("| colorization | 0 | not run: learns from colour")
    assert by_name["random-init encoder"].startswith("| random-init encoder | 3 | - | 0.7200 ± ")
    assert by_name["raw pixels (784-d)"].startswith("| raw pixels (784-d) | 1 | - | 0.8459 (1) |")


def test_a_fresh_cache_is_restored_from_the_committed_json(quality, tmp_path):
    """A new checkout has only quality.json: its rows rebuild the cache and the same table."""
    first, budget = str(tmp_path / "first"), quality.make_budget(epochs=10)
    for seed, knn in enumerate([0.80, 0.82]):
        write_result(quality, first, "simclr", seed, budget, accuracies(knn), cpu=60.0)
        write_result(quality, first, "random_init", seed, budget, accuracies(0.7))
    write_result(quality, first, "iic", 0, budget, accuracies(0.74, clustering=0.52))
    write_result(quality, first, "raw_pixels", None, budget, accuracies(0.8459, 0.8458))
    results_path = str(tmp_path / "quality.json")
    original = quality.build_results(first, budget)
    quality.write_results(original, results_path, first)

    fresh = str(tmp_path / "fresh")
    assert quality.restore_cache(results_path, fresh) == 6
    assert quality.build_results(fresh, budget) == original
    assert quality.restore_cache(results_path, fresh) == 0  # nothing missing, nothing rewritten
    statuses = quality.plan(fresh, quality.jobs_for(["simclr"], [0, 1]), budget)
    assert [status for _, _, status, _ in statuses] == ["cached"] * 5

    # A row whose method config changed since is restored but never counted: it retrains.
    with open(results_path) as f:
        edited = json.load(f)
    edited["methods"]["simclr"][1]["config_sha256"] = "0" * 64
    with open(results_path, "w") as f:
        json.dump(edited, f)
    other = str(tmp_path / "other")
    assert quality.restore_cache(results_path, other) == 6
    status, reason = quality.cache_status(
        quality.result_path(other, "simclr", 1), quality.expected_key("simclr", budget, 1)
    )
    assert status == "stale" and "config changed" in reason
    assert [row["seed"] for row in quality.build_results(other, budget)["methods"]["simclr"]] == [0]
    assert quality.restore_cache(str(tmp_path / "missing.json"), other) == 0


@pytest.mark.slow  # trains real methods; the cache and table logic have unit tests here
def test_a_rerun_trains_nothing_and_tables_keep_to_their_budget(quality, tmp_path, capsys):
    """Real tiny runs (SimCLR, 256 images, 1 epoch), each in its own process."""
    out, results_path = str(tmp_path / "cache"), str(tmp_path / "quality.json")
    command = [*SMOKE, "--methods", "simclr", "--seeds", "0", "--out", out]
    assert quality.main([*command, "--results", results_path]) == 0
    paths = [
        quality.result_path(out, kind, seed)
        for kind, seed in (("raw_pixels", None), ("random_init", 0), ("simclr", 0))
    ]
    logs = [os.path.join(os.path.dirname(path), "log.txt") for path in paths]
    stamps = {path: os.stat(path).st_mtime_ns for path in paths + logs}
    with open(paths[2]) as f:
        result = json.load(f)
    assert result["budget"]["epochs"] == 1 and result["budget"]["train_examples"] == 256
    assert result["epochs_completed"] == 1 and 0 <= result["metrics"]["knn"] <= 1
    assert result["config"] == "configs/simclr_fashion_mnist.py"
    timing = result["timing"]
    assert timing["wall_seconds"] > timing["train_seconds"] > 0 and timing["cpu_seconds"] > 0
    assert result["machine"]["cpu_count"] == os.cpu_count()
    assert (result["git"] or {}).get("commit") == (quality.git_commit() or {}).get("commit")
    assert os.path.exists(os.path.join(os.path.dirname(paths[2]), "run", "model.keras"))
    first = capsys.readouterr().out
    assert "simclr seed 0: running" in first and "simclr seed 0: done" in first

    # Second invocation: every run is cached, no worker starts, no file is rewritten.
    assert quality.main([*command, "--results", results_path]) == 0
    second = capsys.readouterr().out
    assert "running" not in second
    for label in ("raw_pixels", "random_init seed 0", "simclr seed 0"):
        assert f"{label}: cached" in second
    assert {path: os.stat(path).st_mtime_ns for path in paths + logs} == stamps
    with open(results_path) as f:
        results = json.load(f)
    assert [row["seed"] for row in results["methods"]["simclr"]] == [0]
    assert results["methods"]["simclr"][0]["knn"] == result["metrics"]["knn"]
    assert len(results["baselines"]["random_init"]) == len(results["baselines"]["raw_pixels"]) == 1

    # Another budget: the SimCLR result is left out, never mixed in; the baselines still count.
    other = str(tmp_path / "epochs2.json")
    assert quality.main([*command, "--epochs", "2", "--table-only", "--results", other]) == 0
    with open(other) as f:
        results = json.load(f)
    assert results["methods"] == {} and results["budget"]["epochs"] == 2
    assert results["excluded"] == [
        {
            "path": os.path.join("simclr", "seed0", "result.json"),
            "reason": "another budget: epochs=1 (want 2)",
        }
    ]
    assert len(results["baselines"]["random_init"]) == 1
    assert "Left out of the table: simclr" in capsys.readouterr().out
    assert {path: os.stat(path).st_mtime_ns for path in paths + logs} == stamps
