import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # example script end to end
def test_split_brain_example_trains_and_writes_the_grid(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    script = os.path.join(ROOT, "examples", "split_brain_photos.py")
    arguments = ["--epochs=2", "--image-size=8", "--train-examples=128", "--batch-size=32"]
    result = subprocess.run(
        [sys.executable, script, *arguments, "--widths=4,8", f"--out={tmp_path}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.getsize(tmp_path / "split_brain.png") > 0
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    for term in ("loss", "ab_loss", "lightness_loss"):
        first, last = float(lines[term][1]), float(lines[term][3])
        assert 0 < last < first, lines[term]
