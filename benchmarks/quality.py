"""Every registered method on Fashion-MNIST with one shared budget, over several seeds.

    python benchmarks/quality.py [--methods simclr,byol] [--seeds 0,1,2] [--epochs 10]
                                 [--minutes M] [--out runs/quality]
                                 [--results benchmarks/results/quality.json] [--table-only]

Each method trains from its own ``configs/<method>_fashion_mnist.py`` (its loss, heads,
augmentations and optimizer) with the shared budget overriding the rest: the same SmallResNet
16-32-64 backbone, batch 128 (``--batch``), ``--epochs`` epochs (default 10) over all 60,000
training images, once per seed (``config.seed``: weights, data order, augmentations). The budget
is counted in epochs, so the accuracies do not depend on the machine's speed or load;
``--minutes`` adds a wall-clock cap per run (part of the budget: the epochs column shows how far
runs got). The frozen encoder is then probed on the full split: weighted kNN (k=20, T=0.07) with
all 60,000 training images as references, a linear classifier on all labels, and linear
classifiers on class-balanced 1% and 10% of the labels (probe seed 0 for every run, so the seeds
vary the pretraining only); clustering methods (IIC, DeepCluster) also get their unsupervised
clustering accuracy on the test set. Baselines: the random-init encoder (same architecture, one
per seed) and raw pixels (once: its features and probes do not depend on the seed).

Every (method, seed) trains in its own Python process (a fresh TensorFlow runtime, precision
policy and memory per run; a crash loses one run; results do not depend on the order of runs)
and leaves, written atomically::

    OUT/<method>/seed<s>/result.json     accuracies, budget, config digest, wall and CPU seconds,
                                         git commit, machine cores and load
    OUT/<method>/seed<s>/run/            the work folder of ``experiment.train``
    OUT/<method>/seed<s>/log.txt         the run's output
    OUT/random_init/seed<s>/result.json  OUT/raw_pixels/result.json

A rerun skips every run whose cached result has the same budget (epochs, batch, minutes cap,
image counts) and the same resolved method config, and retrains (replacing the file) those that
differ, saying why; results of another budget or config are never mixed into a table. The
aggregate of everything cached at the current budget (partial tables allowed: each row says how
many seeds it averages) goes to ``--results`` (JSON) and a Markdown table of mean ± std (n) plus
the paired improvement over random init goes to stdout, ``OUT/quality.md`` and ``--results``
with the ``.md`` suffix. ``--table-only`` rebuilds both from the cache without training.

A fresh checkout has no cache: every row of the committed ``--results`` JSON (budget, accuracies,
timing, commit, config digest) is first written back into the cache where its run has no file,
so a table grows over sessions and a later run retrains only what is missing or stale.

The colour methods (Colorization, SplitBrain: they learn from the ab channels of RGB images)
have nothing to learn from grayscale Fashion-MNIST; they are listed in the table as not run, with
that reason, and measured on photos by their own examples.
"""

import argparse
import datetime
import hashlib
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

START_WALL = time.monotonic()  # before TensorFlow's import: a worker's wall time includes it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_ssl import config as config_lib  # noqa: E402
from keras_ssl import evaluation, experiment, methods, precision  # noqa: E402
from keras_ssl.datasets.splits import load_splits  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRACTIONS = (0.01, 0.1)
METRICS = ("knn", "linear", "linear_0.01", "linear_0.1", "clustering")
COLUMNS = {"knn": "kNN", "linear": "linear", "linear_0.01": "linear 1%", "linear_0.1": "linear 10%"}
BASELINES = {"random_init": "random-init encoder", "raw_pixels": "raw pixels (784-d)"}
BACKBONE = {"backbone": "small_resnet", "widths": [16, 32, 64]}
COLOUR_REASON = "learns from colour; Fashion-MNIST is grayscale"
SCHEMA = 1
TIMING = ("wall_seconds", "train_seconds", "cpu_seconds")


# ------------------------------------------------------------------------------ budget
def needs_rgb(name):
    """True for methods that learn from colour and cannot train on grayscale images."""
    return getattr(methods.REGISTRY[name], "requires_rgb", False)


def make_budget(
    epochs=10,
    batch=128,
    minutes=None,
    train_examples=None,
    probe_train_examples=None,
    probe_test_examples=None,
):
    """The shared budget: what must match for two results to share a table.

    ``None`` image counts mean the whole split (60,000 train / 10,000 test images).
    """
    for label, value, low in (
        ("--epochs", epochs, 1),
        ("--batch", batch, 1),
        ("--train-examples", train_examples, 1),
        ("--probe-train-examples", probe_train_examples, 10),
        ("--probe-test-examples", probe_test_examples, 1),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < low
        ):
            raise ValueError(
                f"{label} must be an integer >= {low}; received {value!r}. Fix: pass e.g. "
                f"{label} {max(low, 10)}."
            )
    if minutes is not None and not (isinstance(minutes, (int, float)) and minutes > 0):
        raise ValueError(
            f"--minutes must be a positive number or unset; received {minutes!r}. Fix: drop "
            "--minutes or pass e.g. --minutes 30."
        )
    return {
        "epochs": epochs,
        "batch": batch,
        "minutes": None if minutes is None else float(minutes),
        "train_examples": train_examples,
        "probe_train_examples": probe_train_examples,
        "probe_test_examples": probe_test_examples,
        **BACKBONE,
    }


def baseline_budget(budget, kind):
    """The part of ``budget`` a baseline depends on: no training, so no epochs or batch."""
    keys = ["probe_train_examples", "probe_test_examples"]
    if kind == "random_init":
        keys += list(BACKBONE)
    return {key: budget[key] for key in keys}


def method_config(
    name,
    epochs,
    minutes,
    batch=128,
    seed=0,
    train_examples=None,
    probe_train_examples=None,
    probe_test_examples=None,
):
    """The method's own config with the shared budget applied."""
    path = os.path.join(ROOT, "configs", f"{name}_fashion_mnist.py")
    if not os.path.exists(path):
        raise ValueError(
            f"No config for method {name!r}: expected {path}. Fix: add "
            f"configs/{name}_fashion_mnist.py or drop {name!r} from --methods."
        )
    spec = importlib.util.spec_from_file_location(f"{name}_fashion_mnist", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.seed = seed
    config.backbone = BACKBONE["backbone"]
    config.backbone_kwargs = {"widths": tuple(BACKBONE["widths"])}
    config.batch_size = batch
    config.epochs = epochs
    config.train_steps = 0  # a shared budget in epochs, whatever the config says
    config.time_budget_minutes = minutes
    config.data.train_examples = train_examples
    # The per-epoch kNN probe while training: 10,000 labelled references (fewer in smoke runs).
    config.data.probe_train_examples = min(10000, probe_train_examples or 10000)
    config.data.probe_test_examples = probe_test_examples
    config.probes.knn_every_epochs = max(1, epochs // 3)
    config.export = False  # the probes use the trained model; no SavedModel needed
    config_lib.validate(config)
    return config


def config_for(name, budget, seed):
    return method_config(
        name,
        budget["epochs"],
        budget["minutes"],
        batch=budget["batch"],
        seed=seed,
        train_examples=budget["train_examples"],
        probe_train_examples=budget["probe_train_examples"],
        probe_test_examples=budget["probe_test_examples"],
    )


def config_digest(config):
    """sha256 of the resolved config: a changed method config invalidates its cached results."""
    text = json.dumps(json.loads(config.to_json_best_effort()), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------- cache
def result_path(out, kind, seed):
    """``OUT/<kind>/seed<s>/result.json``; ``OUT/raw_pixels/result.json`` (seed ``None``)."""
    if seed is None:
        return os.path.join(out, kind, "result.json")
    return os.path.join(out, kind, f"seed{seed}", "result.json")


def write_json_atomic(path, payload):
    """Writes JSON to a temporary file beside ``path`` and renames it over ``path``: readers see
    the old file or the complete new one, never a partial one; the temporary file is removed
    when writing fails."""
    write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def write_text_atomic(path, text):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = f"{path}.partial.{os.getpid()}"
    try:
        with open(partial, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def expected_key(kind, budget, seed):
    """What a cached result of ``kind`` must hold to count at ``budget``: its budget, and for
    methods the digest of the resolved config."""
    if kind in BASELINES:
        return {"budget": baseline_budget(budget, kind)}
    return {"budget": dict(budget), "config_sha256": config_digest(config_for(kind, budget, seed))}


def cache_status(path, key):
    """``("cached", result)``, ``("missing", None)`` or ``("stale", reason)`` for one result file.

    A result of another budget or config is stale: training reruns it, tables leave it out.
    """
    if not os.path.exists(path):
        return "missing", None
    try:
        with open(path) as f:
            result = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        return "stale", f"unreadable ({error})"
    if result.get("schema") != SCHEMA:
        return "stale", f"schema {result.get('schema')!r}, expected {SCHEMA}"
    differences = [
        f"{field}={result.get('budget', {}).get(field)!r} (want {value!r})"
        for field, value in key["budget"].items()
        if result.get("budget", {}).get(field) != value
    ]
    if differences:
        return "stale", "another budget: " + ", ".join(differences)
    if "config_sha256" in key and result.get("config_sha256") != key["config_sha256"]:
        return "stale", f"the method's resolved config changed since ({result.get('config')})"
    return "cached", result


def restore_cache(results_path, out):
    """Writes a result file into ``out`` for every row of the aggregate at ``results_path``
    (the committed ``quality.json``) whose run has none there; returns how many it wrote.

    A fresh checkout has no cache, but the committed JSON holds every row of the table: its
    budget, accuracies, timing, commit and (for methods) config digest. The restored files pass
    through :func:`cache_status` like any other, so a row of another budget or config is still
    retrained or left out. A file already in the cache is never replaced.
    """
    if not os.path.exists(results_path):
        return 0
    with open(results_path) as f:
        results = json.load(f)
    if results.get("schema") != SCHEMA:
        return 0
    restored, budget = 0, results["budget"]
    groups = [("methods", results.get("methods", {})), ("baselines", results.get("baselines", {}))]
    for group, rows_by_kind in groups:
        for kind, rows in rows_by_kind.items():
            for row in rows:
                path = result_path(out, kind, row["seed"])
                if os.path.exists(path) or (group == "methods" and "config_sha256" not in row):
                    continue
                result = {
                    "schema": SCHEMA,
                    "kind": kind,
                    "seed": row["seed"],
                    "budget": baseline_budget(budget, kind) if group == "baselines" else budget,
                    "metrics": {metric: row.get(metric) for metric in METRICS},
                    "timing": {key: row.get(key) for key in TIMING},
                    "git": {"commit": row.get("commit")},
                    "restored_from": os.path.relpath(results_path, ROOT),
                }
                if group == "methods":
                    result.update(
                        config_sha256=row["config_sha256"],
                        epochs_completed=row.get("epochs_completed"),
                    )
                write_json_atomic(path, result)
                restored += 1
    return restored


def jobs_for(names, seeds):
    """Every run of a full table: baselines first (cheap), then each method and seed."""
    jobs = [("raw_pixels", None)] + [("random_init", seed) for seed in seeds]
    return jobs + [(name, seed) for name in names for seed in seeds]


def plan(out, jobs, budget):
    """``[(kind, seed, status, detail)]``: which runs are cached and which must (re)train."""
    rows = []
    for kind, seed in jobs:
        status, detail = cache_status(
            result_path(out, kind, seed), expected_key(kind, budget, seed)
        )
        rows.append((kind, seed, status, detail))
    return rows


# ------------------------------------------------------------------------------ probes
def probe(train_features, test_features, y_train, y_test):
    """kNN, linear (all labels) and linear on label fractions, on one feature set."""
    normalized = [evaluation.l2_normalize(f) for f in (train_features, test_features)]
    row = {
        "knn": evaluation.knn_accuracy(normalized[0], y_train, normalized[1], y_test, k=20),
        "linear": evaluation.linear_probe(train_features, y_train, test_features, y_test)[
            "accuracy"
        ],
    }
    for fraction in FRACTIONS:
        subset = evaluation.label_fraction(y_train, fraction, seed=0)
        result = evaluation.linear_probe(
            train_features[subset], y_train[subset], test_features, y_test, epochs=200
        )
        row[f"linear_{fraction:g}"] = result["accuracy"]
    return {key: float(value) for key, value in row.items()}


def encoder_row(encoder, splits):
    x_train, y_train, x_test, y_test = splits
    train = evaluation.extract_features(encoder, x_train, normalize=False)
    test = evaluation.extract_features(encoder, x_test, normalize=False)
    return probe(train, test, y_train, y_test)


def probe_data(budget):
    """The probe split: the whole of Fashion-MNIST, or the budget's fixed subsets (seed 0)."""
    x_train, y_train, x_test, y_test = load_splits(config_lib.default_config().data)

    def subset(images, labels, count):
        if count is None or count >= len(images):
            return images, labels
        order = np.sort(np.random.default_rng(0).permutation(len(images))[:count])
        return images[order], labels[order]

    x_train, y_train = subset(x_train, y_train, budget["probe_train_examples"])
    x_test, y_test = subset(x_test, y_test, budget["probe_test_examples"])
    return x_train, y_train, x_test, y_test


# ------------------------------------------------------------------------------ worker
def git_commit():
    """``{"commit": sha, "dirty": bool}`` of the keras_ssl checkout, or ``None`` outside git."""
    try:
        sha = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        status = subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def load_average():
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def machine():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None
            )
    except OSError:
        pass
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return {
        "cpu_count": cores,
        "usable_cores": usable,
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "tensorflow": __import__("tensorflow").__version__,
    }


def cpu_seconds():
    """User + system CPU seconds of this process (all threads) and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_job(kind, seed, budget, out):
    """Trains (methods) or builds (baselines) one run, probes it and writes its result file.

    Meant to run in a fresh process (``--worker``); returns the result.
    """
    load_start = load_average()
    key = expected_key(kind, budget, seed)
    result = {"schema": SCHEMA, "kind": kind, "seed": seed, **key}
    train_seconds = None  # baselines do not train
    if kind == "raw_pixels":
        splits = probe_data(budget)
        probe_start = time.monotonic()
        metrics = probe(
            *(x.reshape(len(x), -1).astype(np.float32) / 255 for x in (splits[0], splits[2])),
            splits[1],
            splits[3],
        )
    elif kind == "random_init":
        config = config_for("simclr", budget, seed)  # any method: the encoder is the shared one
        precision.set_policy(config.precision)
        splits = probe_data(budget)
        keras.utils.set_random_seed(seed)
        encoder = experiment.build_model(config, splits[0].shape[1:]).export_encoder
        probe_start = time.monotonic()
        metrics = encoder_row(encoder, splits)
    else:
        config = config_for(kind, budget, seed)
        workdir = os.path.join(os.path.dirname(result_path(out, kind, seed)), "run")
        previous = os.path.join(workdir, "config.json")
        resumed = False
        if os.path.exists(previous):
            with open(previous) as f:
                same = json.load(f) == json.loads(config.to_json_best_effort())
            if same:  # an interrupted run of this budget: experiment.train resumes it
                resumed = os.path.isdir(os.path.join(workdir, "backup"))
            else:  # another budget's state must not be resumed
                shutil.rmtree(workdir)
        train_start = time.monotonic()
        model, history = experiment.train(config, workdir, verbose=2)
        train_seconds = time.monotonic() - train_start
        splits = probe_data(budget)
        probe_start = time.monotonic()
        metrics = encoder_row(model.export_encoder, splits)
        # IIC, DeepCluster: Hungarian clustering accuracy on the test set after the last epoch.
        clustering = (history.get("clustering_accuracy") or [None])[-1]
        metrics["clustering"] = None if clustering is None else float(clustering)
        result.update(
            config=f"configs/{kind}_fashion_mnist.py",
            epochs_completed=len(history["loss"]),
            resumed=resumed,
            history={
                k: [float(v) if math.isfinite(v) else None for v in values]
                for k, values in history.items()
            },
        )
    result.update(
        metrics=metrics,
        timing={
            "wall_seconds": time.monotonic() - START_WALL,
            "train_seconds": train_seconds,
            "probe_seconds": time.monotonic() - probe_start,
            "cpu_seconds": cpu_seconds(),
            "process_time_seconds": time.process_time(),
        },
        machine={**machine(), "load_average_start": load_start, "load_average_end": load_average()},
        git=git_commit(),
        finished_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    write_json_atomic(result_path(out, kind, seed), result)
    return result


def launch(kind, seed, budget, out):
    """Runs :func:`run_job` in a fresh Python process; its output goes to the run's log.txt.

    Returns the process's exit status.
    """
    folder = os.path.dirname(result_path(out, kind, seed))
    os.makedirs(folder, exist_ok=True)
    request = json.dumps({"kind": kind, "seed": seed, "budget": budget, "out": out})
    with open(os.path.join(folder, "log.txt"), "w") as log:
        process = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--worker", request],
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return process.returncode


# ----------------------------------------------------------------------------- tables
def mean_std(values):
    """``{"mean", "std", "n"}``: the sample standard deviation (ddof=1), ``None`` for n=1."""
    values = [float(v) for v in values]
    if not values:
        return None
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"mean": float(np.mean(values)), "std": std, "n": len(values)}


def result_row(result):
    """One seed's row of the aggregate: accuracies, how far it trained, what it cost, and (for
    methods) the digest of the config it trained, so :func:`restore_cache` can rebuild the
    cache from the committed JSON."""
    row = {"seed": result["seed"]}
    if "config_sha256" in result:
        row["config_sha256"] = result["config_sha256"]
    row.update({k: v for k, v in result["metrics"].items() if v is not None})
    timing = result.get("timing", {})
    row["epochs_completed"] = result.get("epochs_completed")
    row.update({key: timing.get(key) for key in TIMING})
    row["commit"] = (result.get("git") or {}).get("commit")
    return row


def summarize(rows):
    keys = [m for m in METRICS if any(m in row for row in rows)]
    keys += ["epochs_completed", *TIMING]
    summary = {}
    for key in keys:
        values = [row[key] for row in rows if row.get(key) is not None]
        if values:
            summary[key] = mean_std(values)
    return summary


def improvement(rows, random_rows):
    """Paired by seed: mean ± std of (method - random init) over the seeds both have."""
    random_by_seed = {row["seed"]: row for row in random_rows}
    paired = [(row, random_by_seed[row["seed"]]) for row in rows if row["seed"] in random_by_seed]
    result = {}
    for metric in COLUMNS:
        diffs = [a[metric] - b[metric] for a, b in paired if metric in a and metric in b]
        if diffs:
            result[metric] = {**mean_std(diffs), "seeds": [a["seed"] for a, _ in paired]}
    return result


def cached_kinds(out):
    """Method names (registry, grayscale) and baselines with a folder in ``out``."""
    if not os.path.isdir(out):
        return []
    return sorted(
        entry
        for entry in os.listdir(out)
        if entry in BASELINES or (entry in methods.REGISTRY and not needs_rgb(entry))
    )


def seeds_in(out, kind):
    if kind == "raw_pixels":
        return [None]
    folder = os.path.join(out, kind)
    seeds = []
    for entry in os.listdir(folder):
        if entry.startswith("seed") and entry[4:].isdigit():
            seeds.append(int(entry[4:]))
    return sorted(seeds)


def build_results(out, budget):
    """The aggregate of every cached result in ``out`` at ``budget`` (see the module docs)."""
    found = {"methods": {}, "baselines": {name: [] for name in BASELINES}}
    excluded = []
    for kind in cached_kinds(out):
        for seed in seeds_in(out, kind):
            path = result_path(out, kind, seed)
            if not os.path.exists(path):
                continue  # a run that has not finished
            try:
                key = expected_key(kind, budget, seed)
            except ValueError as error:  # the method's config file is gone
                excluded.append({"path": os.path.relpath(path, out), "reason": str(error)})
                continue
            status, detail = cache_status(path, key)
            if status != "cached":
                excluded.append({"path": os.path.relpath(path, out), "reason": detail})
                continue
            group = found["baselines"] if kind in BASELINES else found["methods"]
            group.setdefault(kind, []).append(result_row(detail))
    random_rows = found["baselines"]["random_init"]
    all_rows = [row for rows in found["methods"].values() for row in rows]
    all_rows += [row for rows in found["baselines"].values() for row in rows]
    totals = {
        key: float(sum(row[key] for row in all_rows if row.get(key) is not None))
        for key in ("wall_seconds", "cpu_seconds")
    }
    commits = sorted({row["commit"] for row in all_rows if row.get("commit")})
    return {
        "schema": SCHEMA,
        "budget": budget,
        "methods": found["methods"],
        "baselines": found["baselines"],
        "summary": {
            name: summarize(rows)
            for group in ("methods", "baselines")
            for name, rows in found[group].items()
            if rows
        },
        "improvement_over_random_init": {
            name: improvement(rows, random_rows) for name, rows in found["methods"].items()
        },
        "not_run": {name: COLOUR_REASON for name in sorted(methods.REGISTRY) if needs_rgb(name)},
        "pending": sorted(
            name
            for name in methods.REGISTRY
            if not needs_rgb(name) and name not in found["methods"]
        ),
        "excluded": excluded,
        "totals": totals,
        "commits": commits,
    }


def format_stat(stat, signed=False):
    if stat is None:
        return "-"
    sign = "+" if signed else ""
    text = f"{stat['mean']:{sign}.4f}"
    if stat["std"] is not None:
        text += f" ± {stat['std']:.4f}"
    return text + ("" if signed else f" ({stat['n']})")


def format_table(results):
    """The README table: mean ± std (n seeds) per metric, best first by kNN."""
    budget = results["budget"]
    header = (
        "| method | seeds | epochs | kNN | linear | linear 1% | linear 10% | clustering | "
        "Δ kNN vs random init | Δ linear vs random init | train min | CPU min |"
    )
    columns = header.count("|") - 1
    lines = [header, "|" + "---|" * columns]

    def epochs(summary):
        stat = summary.get("epochs_completed")
        if stat is None:
            return "-"
        return f"{stat['mean']:g}/{budget['epochs']}"

    def minutes(summary, key):
        stat = summary.get(key)
        return "-" if stat is None else f"{stat['mean'] / 60:.1f}"

    def row(label, summary, gains, count, show_epochs=True):
        cells = [label, str(count), epochs(summary) if show_epochs else "-"]
        cells += [format_stat(summary.get(metric)) for metric in (*COLUMNS, "clustering")]
        cells += [format_stat(gains.get(metric), signed=True) for metric in ("knn", "linear")]
        cells += [minutes(summary, "train_seconds"), minutes(summary, "cpu_seconds")]
        return "| " + " | ".join(cells) + " |"

    ranked = sorted(
        results["methods"],
        key=lambda name: -results["summary"][name].get("knn", {"mean": 0})["mean"],
    )
    for name in ranked:
        summary = results["summary"][name]
        gains = results["improvement_over_random_init"].get(name, {})
        lines.append(row(name, summary, gains, len(results["methods"][name])))
    rest = " - |" * (columns - 3)  # the note fills the third column
    for name in results["pending"]:
        lines.append(f"| {name} | 0 | no result at this budget yet |" + rest)
    for name, reason in results["not_run"].items():
        lines.append(f"| {name} | 0 | not run: {reason} |" + rest)
    for kind, label in BASELINES.items():
        rows = results["baselines"][kind]
        if rows:
            lines.append(row(label, results["summary"][kind], {}, len(rows), show_epochs=False))
    return "\n".join(lines)


def describe(results):
    budget = results["budget"]
    images = budget["train_examples"] or 60000
    cap = f", capped at {budget['minutes']:g} min" if budget["minutes"] else ""
    return (
        f"Shared budget: SmallResNet 16-32-64, batch {budget['batch']}, {budget['epochs']} "
        f"epoch{'s' if budget['epochs'] != 1 else ''} over {images:,} Fashion-MNIST training "
        f"images{cap}; mean ± sample std (ddof=1) over the seeds in brackets; "
        "Δ: paired by seed against the random-init encoder. "
        f"Total {results['totals']['cpu_seconds'] / 3600:.2f} CPU h, "
        f"{results['totals']['wall_seconds'] / 3600:.2f} h wall (sum over runs)."
    )


def write_results(results, results_path, out):
    """The aggregate JSON at ``results_path``; the Markdown table beside it and in ``out``."""
    table = describe(results) + "\n\n" + format_table(results) + "\n"
    write_json_atomic(results_path, results)
    write_text_atomic(os.path.splitext(results_path)[0] + ".md", table)
    write_text_atomic(os.path.join(out, "quality.md"), table)
    return table


# ------------------------------------------------------------------------------- main
def parse_list(text, label, cast=str):
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        values = [cast(item) for item in items]
    except ValueError:
        values = None
    if not values or len(set(values)) != len(values) or (cast is int and min(values) < 0):
        raise ValueError(
            f"{label} must be a comma-separated list of distinct "
            f"{'non-negative integers' if cast is int else 'names'}; received {text!r}. "
            f"Fix: pass e.g. {label} {'0,1,2' if cast is int else 'simclr,byol'}."
        )
    return values


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(sorted(methods.REGISTRY)))
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run")
    parser.add_argument("--batch", type=int, default=128, help="batch size of every method")
    parser.add_argument("--minutes", type=float, default=None, help="optional cap per run")
    parser.add_argument(
        "--train-examples",
        type=int,
        default=None,
        help="SSL training images (default: all 60,000; smoke runs only)",
    )
    parser.add_argument(
        "--probe-train-examples",
        type=int,
        default=None,
        help="probe training images (default: all 60,000; smoke runs only)",
    )
    parser.add_argument(
        "--probe-test-examples",
        type=int,
        default=None,
        help="probe test images (default: all 10,000; smoke runs only)",
    )
    parser.add_argument(
        "--out",
        default=os.path.join(ROOT, "runs", "quality"),
        help="cache folder of per-run results",
    )
    parser.add_argument(
        "--results", default=os.path.join(ROOT, "benchmarks", "results", "quality.json")
    )
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="rebuild the JSON and table from the cache; train nothing",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        request = json.loads(args.worker)
        run_job(request["kind"], request["seed"], request["budget"], request["out"])
        return 0
    out = os.path.abspath(args.out)
    budget = make_budget(
        args.epochs,
        args.batch,
        args.minutes,
        args.train_examples,
        args.probe_train_examples,
        args.probe_test_examples,
    )
    names = parse_list(args.methods, "--methods")
    seeds = parse_list(args.seeds, "--seeds", int)
    unknown = sorted(set(names) - set(methods.REGISTRY))
    if unknown:
        raise ValueError(
            f"Unknown methods {unknown}; expected names from {sorted(methods.REGISTRY)}. "
            "Fix: correct --methods."
        )
    colour = [name for name in names if needs_rgb(name)]
    names = [name for name in names if not needs_rgb(name)]
    if colour:
        print(f"Not run ({COLOUR_REASON}): {', '.join(colour)}", flush=True)
    if not names and not args.table_only:
        raise ValueError(
            f"--methods={args.methods!r} holds only colour methods, which cannot train on "
            "grayscale Fashion-MNIST. Fix: add a grayscale method, or run "
            "examples/colorize_photos.py for the colour methods."
        )
    for name in names:  # a missing config fails now, not hours in
        config_for(name, budget, seeds[0])
    restored = restore_cache(os.path.abspath(args.results), out)
    if restored:
        print(f"Restored {restored} cached results from {args.results}", flush=True)
    failed = []
    if not args.table_only:
        for kind, seed, status, detail in plan(out, jobs_for(names, seeds), budget):
            label = kind if seed is None else f"{kind} seed {seed}"
            if status == "cached":
                print(f"{label}: cached", flush=True)
                continue
            if status == "stale":
                print(f"{label}: cached result ignored, {detail}; recomputing", flush=True)
            print(
                f"{label}: running (log: {os.path.dirname(result_path(out, kind, seed))}/log.txt)",
                flush=True,
            )
            start = time.monotonic()
            code = launch(kind, seed, budget, out)
            status, detail = cache_status(
                result_path(out, kind, seed), expected_key(kind, budget, seed)
            )
            if code != 0 or status != "cached":
                failed.append(label)
                print(f"{label}: FAILED (exit {code}); see its log.txt", flush=True)
                continue
            print(
                f"{label}: done in {(time.monotonic() - start) / 60:.1f} min, "
                f"kNN {detail['metrics']['knn']:.4f}",
                flush=True,
            )
            write_results(build_results(out, budget), args.results, out)  # progress on disk
    results = build_results(out, budget)
    for entry in results["excluded"]:
        print(f"Left out of the table: {entry['path']}: {entry['reason']}", flush=True)
    print("\n" + write_results(results, args.results, out))
    if failed:
        print(f"Failed runs (rerun the same command to retry them): {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
