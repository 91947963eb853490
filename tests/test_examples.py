import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )


@pytest.mark.slow  # runs the example scripts end to end; test_cli covers train/export
def test_pretrain_then_serve_examples(tmp_path):
    out = str(tmp_path / "example")
    script = os.path.join(ROOT, "examples", "pretrain_simclr.py")
    result = run_example(
        script, "--epochs=1", "--train-examples=256", "--batch-size=64", f"--out={out}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "knn_accuracy" in result.stdout and "linear_accuracy" in result.stdout
    serve = run_example(os.path.join(ROOT, "examples", "serve_encoder.py"), f"{out}/encoder")
    assert serve.returncode == 0, serve.stderr[-3000:]
    lines = serve.stdout.strip().splitlines()
    assert len(lines) == 8 and all(line.startswith(f"image {i}:") for i, line in enumerate(lines))


def test_serve_example_returns_unit_embeddings(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import serve_encoder

        import keras_ssl

        encoder = keras_ssl.backbones.SmallResNet((8, 8, 1), widths=(4,))
        path = keras_ssl.export.export_encoder(encoder, tmp_path / "enc")
        embeddings = serve_encoder.main(path)
    finally:
        sys.path.pop(0)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5, atol=1e-5)
