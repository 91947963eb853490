import importlib.util
import json
import pathlib

import numpy as np
from matplotlib import image as mpimg

from keras_ssl.datasets import fashion_mnist

SCRIPT = pathlib.Path(__file__).parents[1] / "examples" / "generate_fashion_mnist.py"


def test_vae_example_trains_probes_and_draws(tmp_path):
    spec = importlib.util.spec_from_file_location("generate_fashion_mnist", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "run"
    metrics = module.main(
        [
            "--method",
            "vae",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--batch-size",
            "64",
            "--train-examples",
            "128",
            "--probe-examples",
            "200",
            "--test-examples",
            "100",
            "--data-dir",
            str(fashion_mnist.EMBEDDED_DIR),
        ]
    )
    with open(out / "metrics.json") as f:
        assert json.load(f) == metrics
    assert metrics["train_examples"] == 128 and metrics["probe_test_examples"] == 100
    assert 0 <= metrics["knn_accuracy"] <= 1 and 0 <= metrics["linear_accuracy"] <= 1
    picture = mpimg.imread(out / "samples.png")
    # 16 shown images in rows of 8 -> 2 original + 2 reconstruction rows, 2 sample rows.
    assert picture.shape[0] == round(100 * (1.1 * 6 + 0.5))
    assert np.ptp(picture[..., :3]) > 0.5
