import keras
import numpy as np
import pytest
from matplotlib.image import imread

from keras_ssl import backbones
from keras_ssl.evaluation.reconstruction import (
    plot_image_columns,
    plot_reconstructions,
    reconstruction_grid,
)
from keras_ssl.methods.autoencoder import DenoisingAutoencoder
from keras_ssl.methods.context_encoder import ContextEncoder


def _images(n=3, side=8, channels=1):
    return np.random.default_rng(0).random((n, side, side, channels), dtype=np.float32)


def test_grid_has_a_row_per_example_and_four_columns(tmp_path):
    originals = np.zeros((2, 8, 8, 1), np.float32)
    originals[1] = 1.0  # second row white, first black
    masks = np.ones((2, 8, 8), np.float32)
    small = plot_reconstructions(originals, masks, originals, originals, tmp_path / "a.png")
    one_row = plot_reconstructions(
        originals, masks, originals, originals, tmp_path / "b.png", max_rows=1
    )
    tall, short = imread(small), imread(one_row)
    assert tall.shape[1] == short.shape[1] and tall.shape[0] > 1.6 * short.shape[0]
    # A pixel in the middle of each panel: black panels in row 1, white in row 2 (mask white).
    height, width = tall.shape[:2]
    row_centres = (int(height * 0.3), int(height * 0.75))
    first_row = [tall[row_centres[0], int(width * (c + 0.5) / 4), 0] for c in range(4)]
    second_row = [tall[row_centres[1], int(width * (c + 0.5) / 4), 0] for c in range(4)]
    np.testing.assert_allclose(first_row, [0, 1, 0, 0], atol=0.05)
    np.testing.assert_allclose(second_row, [1, 1, 1, 1], atol=0.05)


def test_grid_from_each_method(tmp_path):
    keras.utils.set_random_seed(0)
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8))
    autoencoder = DenoisingAutoencoder(encoder, decoder_widths=(8, 4))
    path = reconstruction_grid(autoencoder, _images(), tmp_path / "ae.png", title="ae")
    assert imread(path).shape[0] > 100
    encoder = backbones.SmallResNet((8, 8, 3), widths=(4, 8))
    context = ContextEncoder(encoder, mask="central", decoder_widths=(8, 4))
    path = reconstruction_grid(context, _images(channels=3), tmp_path / "ce.png", max_rows=2)
    assert imread(path).shape[0] > 100


@pytest.mark.parametrize(
    "change, match",
    [
        ({"inputs": np.zeros((3, 8, 8, 2))}, "`inputs` must be .* received shape \\(3, 8, 8, 2\\)"),
        ({"masks": np.zeros((3, 8, 8, 3))}, "`masks` must be .* with 1 channels"),
        ({"predictions": np.zeros((2, 8, 8, 1))}, "`predictions` must match the originals"),
        ({"originals": np.zeros((8, 8))}, "`originals` must be .* received shape \\(8, 8\\)"),
        ({"originals": np.zeros((0, 8, 8, 1))}, "holds no images"),
        ({"max_rows": 0}, "`max_rows` must be an integer >= 1; received 0"),
    ],
)
def test_bad_input_raises(tmp_path, change, match):
    images = _images()
    arguments = {
        "inputs": images,
        "masks": images,
        "predictions": images,
        "originals": images,
        "path": tmp_path / "x.png",
        **change,
    }
    with pytest.raises(ValueError, match=match):
        plot_reconstructions(**arguments)


def test_image_columns_draw_each_column_and_reject_mismatched_ones(tmp_path):
    black = np.zeros((2, 8, 8), np.float32)  # [N, H, W] grayscale is accepted
    white = np.full((2, 8, 8, 3), 255, np.uint8)
    path = plot_image_columns((("L", black), ("original", white)), tmp_path / "c.png")
    grid = imread(path)
    height, width = grid.shape[:2]
    centres = [grid[int(height * 0.3), int(width * (c + 0.5) / 2), 0] for c in range(2)]
    np.testing.assert_allclose(centres, [0, 1], atol=0.05)
    with pytest.raises(ValueError, match="`L` must match the `original` column's"):
        plot_image_columns((("L", black[:1]), ("original", white)), tmp_path / "d.png")
    with pytest.raises(ValueError, match="`columns` is empty"):
        plot_image_columns((), tmp_path / "e.png")
    with pytest.raises(ValueError, match="`original` holds no images"):
        plot_image_columns((("original", white[:0]),), tmp_path / "f.png")
    with pytest.raises(ValueError, match="`max_rows` must be an integer >= 1; received 0"):
        plot_image_columns((("original", white),), tmp_path / "g.png", max_rows=0)
