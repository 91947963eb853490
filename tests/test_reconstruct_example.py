import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_reconstruct_example_trains_and_writes_the_grid(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    script = os.path.join(ROOT, "examples", "reconstruct_fashion_mnist.py")
    for method in ("autoencoder", "context_encoder"):
        out = tmp_path / method
        result = subprocess.run(
            [
                sys.executable,
                script,
                f"--method={method}",
                "--epochs=1",
                "--subset",
                "--train-examples=128",
                "--test-examples=16",
                "--batch-size=64",
                "--widths=4,8",
                f"--out={out}",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert os.path.getsize(out / "reconstructions.png") > 0
        line = next(x for x in result.stdout.splitlines() if "reconstruction error" in x)
        assert 0 < float(line.rsplit(":", 1)[1]) < 1
