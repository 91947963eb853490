import json
import os
import re
import subprocess
import sys

from keras_ssl.datasets import fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "simclr_fashion_mnist.py")
TINY = [
    f"--config.data.data_dir={fashion_mnist.EMBEDDED_DIR}",
    "--config.data.train_examples=128",
    "--config.data.probe_train_examples=200",
    "--config.data.probe_test_examples=100",
    "--config.batch_size=64",
    "--config.epochs=2",  # epoch 1 has no linear probe value: nothing may print nan
    "--config.train_steps=0",
    "--config.backbone_kwargs.widths=(4,8)",
    "--config.probes.linear_epochs=3",
]


def keras_ssl_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "keras_ssl.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_train_eval_export_from_the_shell(tmp_path):
    workdir = str(tmp_path / "run")
    train = keras_ssl_cli("train", f"--config={CONFIG}", f"--workdir={workdir}", *TINY)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "linear_accuracy: " in train.stdout  # the last epoch's probe is shown
    assert "Run written to" in train.stderr and "fingerprint" not in train.stderr  # no TF INFO
    assert not re.search(r"\bnan\b", train.stdout + train.stderr, re.IGNORECASE)
    with open(os.path.join(workdir, "config.json")) as f:
        saved = json.load(f)
    assert saved["batch_size"] == 64 and saved["backbone_kwargs"]["widths"] == [4, 8]
    evaluate = keras_ssl_cli("eval", f"--workdir={workdir}", "--baselines")
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert "raw pixels" in evaluate.stdout and "simclr encoder" in evaluate.stdout
    export = keras_ssl_cli("export", f"--workdir={workdir}")
    assert export.returncode == 0, export.stderr[-3000:]
    assert export.stdout.strip().endswith(os.path.join(workdir, "encoder"))


def test_unknown_override_is_a_clear_error(tmp_path):
    result = keras_ssl_cli(
        "train", f"--config={CONFIG}", f"--workdir={tmp_path}", "--config.batch_sise=3"
    )
    assert result.returncode == 2
    assert "Unknown config field" in result.stderr and "config.batch_sise" in result.stderr


def test_usage_errors(tmp_path):
    result = keras_ssl_cli("frobnicate", f"--workdir={tmp_path}")
    assert result.returncode != 0 and "expected one command" in result.stderr
    result = keras_ssl_cli("eval", f"--workdir={tmp_path}")
    assert result.returncode == 2 and "No trained run" in result.stderr
