import json
import os
import subprocess
import sys

import pytest

from keras_ssl.datasets import fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "simclr_fashion_mnist.py")
TINY = [
    f"--config.data.data_dir={fashion_mnist.EMBEDDED_DIR}",
    "--config.data.train_examples=128",
    "--config.data.probe_train_examples=200",
    "--config.data.probe_test_examples=60",
    "--config.batch_size=64",
    "--config.epochs=1",
    "--config.train_steps=0",
    "--config.backbone_kwargs.widths=(4,8)",
    "--config.probes.linear_epochs=3",
    "--config.probes.knn_every_epochs=0",
    "--config.export=False",
]
OPTIONS = [
    "--eval_option=linear_epochs=5",
    "--eval_option=finetune_epochs=2",
    "--eval_option=fraction_seeds=(0,)",
    "--eval_option=fractions=(0.1,1.0)",
    "--eval_option=embedding_points=50",
    "--eval_option=segmentation_train_images=16",
    "--eval_option=segmentation_test_images=8",
    "--eval_option=segmentation_canvas_size=32",
    "--eval_option=segmentation_fractions=(0.5,1.0)",
    "--eval_option=segmentation_modes=('frozen',)",
    "--eval_option=segmentation_epochs=1",
    "--eval_option=segmentation_min_steps=2",
    "--eval_option=segmentation_batch_size=8",
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


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("run"))
    train = keras_ssl_cli("train", f"--config={CONFIG}", f"--workdir={folder}", *TINY)
    assert train.returncode == 0, train.stderr[-3000:]
    return folder


@pytest.mark.slow  # every protocol end to end; each protocol has its own tests
def test_eval_all_protocols_writes_eval_json_and_plots(workdir):
    with open(os.path.join(workdir, "marker.txt"), "w") as f:
        f.write("keep me")
    result = keras_ssl_cli("eval", f"--workdir={workdir}", "--protocol=all", *OPTIONS)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(workdir, "eval.json")) as f:
        record = json.load(f)
    assert set(record) == {
        "probes",
        "linear",
        "knn",
        "finetune",
        "fractions",
        "embedding",
        "segmentation",
        "retrieval",
    }
    assert set(record["probes"]["results"]) == {"ssl", "raw_pixels", "random_init"}
    assert set(record["segmentation"]["results"]) == {"ssl", "random_init"}
    for init in ("ssl", "random_init"):
        frozen = record["segmentation"]["results"][init]["frozen"]
        assert set(frozen) == {"0.5", "1"}
        assert 0 <= frozen["1"]["mean_iou"] <= 1 and frozen["1"]["train_images"] == 16
    assert record["knn"]["ks"] == [20, 200] and record["knn"]["temperature"] == 0.07
    assert 0 <= record["linear"]["accuracy"] <= 1 and len(record["linear"]["sweep"]) == 6
    assert len(record["finetune"]["ssl"]["curves"]["test_accuracy"]) == 2
    assert len(record["finetune"]["random_init"]["curves"]["test_accuracy"]) == 2
    assert record["fractions"]["train_examples"] == [20, 200]
    assert set(record["fractions"]["results"]) == {"ssl", "random_init"}
    for name in (
        "data_efficiency.png",
        "convergence.png",
        "embedding_tsne.png",
        "label_efficiency.png",
        "segmentation_grid.png",
        "marker.txt",
    ):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    assert os.listdir(os.path.join(workdir, "features"))  # frozen features cached once
    # A second run of one protocol keeps the others' results and gives the same kNN numbers.
    again = keras_ssl_cli("eval", f"--workdir={workdir}", "--protocol=knn")
    assert again.returncode == 0, again.stderr[-3000:]
    with open(os.path.join(workdir, "eval.json")) as f:
        second = json.load(f)
    assert set(second) == set(record)
    assert second["knn"]["accuracies"] == record["knn"]["accuracies"]


def test_unknown_protocol_and_option_are_clear_errors(workdir):
    result = keras_ssl_cli("eval", f"--workdir={workdir}", "--protocol=svm")
    assert result.returncode == 2 and "Unknown evaluation protocol 'svm'" in result.stderr
    result = keras_ssl_cli("eval", f"--workdir={workdir}", "--protocol=knn", "--eval_option=k")
    assert result.returncode == 2 and "NAME=VALUE" in result.stderr
