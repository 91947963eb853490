"""A training process killed with SIGKILL resumes to the weights of an uninterrupted run.

SimCLR checks weights and optimizer slots; MoCo adds method state that lives outside the
gradient path (the key encoder, the queue of keys and its pointer); BYOL (slow) the EMA target
and the position in its cosine momentum schedule.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_ssl.datasets import fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = [
    "-m",
    "keras_ssl.cli",
    "train",
    f"--config.data.data_dir={fashion_mnist.EMBEDDED_DIR}",
    "--config.data.train_examples=1024",
    "--config.data.probe_train_examples=200",
    "--config.data.probe_test_examples=100",
    "--config.backbone_kwargs.widths=(4,8)",
    "--config.batch_size=32",
    "--config.epochs=6",
    "--config.train_steps=0",  # (the simclr demo config counts steps)
    "--config.time_budget_minutes=60",
    "--config.deterministic=True",
    "--config.precision=float32",
    "--config.export=False",
    "--config.probes.knn_every_epochs=0",
    "--config.probes.collapse_every_epochs=0",
    "--config.probes.linear_epochs=2",
]


METHOD_ARGS = {
    "simclr": [],
    "moco": ["--config.method_kwargs.queue_size=160"],  # pointer ends at 6144 % 160 = 64
    "byol": ["--config.method_kwargs.projection_hidden_dim=16"],
}


def _train(workdir, method):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    config = f"--config={os.path.join(ROOT, 'configs', f'{method}_fashion_mnist.py')}"
    return subprocess.Popen(
        [
            sys.executable,
            *ARGS[:3],
            config,
            *ARGS[3:],
            *METHOD_ARGS[method],
            f"--workdir={workdir}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _backup_epoch(workdir):
    try:
        with open(os.path.join(workdir, "backup", "training_metadata.json")) as f:
            return json.load(f)["epoch"]
    except (OSError, ValueError):
        return 0


@pytest.mark.parametrize(
    "method",
    [
        "simclr",
        pytest.param("moco", marks=pytest.mark.slow),
        pytest.param("byol", marks=pytest.mark.slow),
    ],
)
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, method):
    reference, resumed = str(tmp_path / "reference"), str(tmp_path / "resumed")
    uninterrupted = _train(reference, method)
    victim = _train(resumed, method)
    deadline = time.monotonic() + 300
    while _backup_epoch(resumed) < 2 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not os.path.exists(os.path.join(resumed, "model.keras"))
    killed_at = _backup_epoch(resumed)
    assert 2 <= killed_at < 6
    rerun = _train(resumed, method)
    assert rerun.wait() == 0, rerun.stderr.read()[-3000:]
    assert uninterrupted.wait() == 0, uninterrupted.stderr.read()[-3000:]
    a = keras.saving.load_model(os.path.join(reference, "model.keras"))
    b = keras.saving.load_model(os.path.join(resumed, "model.keras"))
    assert int(a.optimizer.iterations) == int(b.optimizer.iterations) == 6 * 32
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    if method == "moco":
        assert int(a.queue.pointer) == int(b.queue.pointer) == 64
    for va, vb in zip(a.optimizer.variables, b.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))
    assert not os.path.exists(os.path.join(resumed, "backup"))
