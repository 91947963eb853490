"""Tests for keras_ssl.evaluation.plots (PNG files, checked by reading the pixels back)."""

import os

import keras
import numpy as np
import pytest

from keras_ssl.evaluation.plots import plot_training_curves, plot_view_pairs


def _read_png(path):
    from matplotlib import image

    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    return image.imread(path)


def _dark_fraction(pixels):
    return float(np.mean(pixels[..., :3].max(axis=-1) < 0.05))


def test_view_pairs_grid_size_and_content(tmp_path):
    black = np.zeros((10, 8, 8, 3), np.float32)
    white = np.ones((10, 8, 8, 1), np.float32)
    path = plot_view_pairs((black, black, black), tmp_path / "new" / "views.png", max_pairs=4)
    pixels = _read_png(path)
    assert pixels.shape[:2] == (int((1.6 * 4 + 0.2) * 100), int(1.6 * 3 * 100))
    assert _dark_fraction(pixels) > 0.3  # the black views are drawn
    white_pixels = _read_png(plot_view_pairs((white, white, white), tmp_path / "w.png", 4))
    assert _dark_fraction(white_pixels) < 0.06  # only text and frames
    assert white_pixels.shape == pixels.shape


def test_view_pairs_accepts_uint8_grayscale_without_channel_axis_and_title(tmp_path):
    views = (np.zeros((2, 8, 8), np.uint8), np.full((2, 8, 8, 1), 255, np.uint8))
    pixels = _read_png(plot_view_pairs(views, tmp_path / "v.png", title="two views"))
    assert pixels.shape[:2] == (int((1.6 * 2 + 0.5) * 100), int(1.6 * 2 * 100))
    left, right = pixels[:, : pixels.shape[1] // 2], pixels[:, pixels.shape[1] // 2 :]
    assert _dark_fraction(left) > 0.2 and _dark_fraction(right) < 0.06


def test_png_is_written_atomically_and_overwritten(tmp_path):
    views = (np.zeros((1, 4, 4, 3)), np.ones((1, 4, 4, 3)))
    path = tmp_path / "views.png"
    path.write_bytes(b"old")
    plot_view_pairs(views, path)
    _read_png(path)
    assert sorted(os.listdir(tmp_path)) == ["views.png"]  # no temporary file left behind


def test_training_curves_panels(tmp_path):
    epochs = 12
    history = {
        "loss": list(np.linspace(5, 2, epochs)),
        "val_loss": list(np.linspace(5.5, 2.5, epochs)),
        "knn_accuracy": [0.3 + e / 50 if e % 3 == 2 else float("nan") for e in range(epochs)],
        "linear_accuracy": [float("nan")] * (epochs - 1) + [0.7],
    }
    pixels = _read_png(plot_training_curves(history, tmp_path / "a" / "b" / "curves.png"))
    assert pixels.shape[:2] == (360, 1200)  # one row: loss panel, accuracy panel
    history["embedding_std"] = list(np.linspace(0.2, 0.9, epochs))
    pixels = _read_png(plot_training_curves(history, tmp_path / "curves.png", title="run"))
    assert pixels.shape[:2] == (720, 1200)  # a third panel opens a second row


def test_training_curves_accept_a_history_object(tmp_path):
    history = keras.callbacks.History()
    history.history = {"loss": [1.0, 0.5], "knn_accuracy": [None, 0.4]}
    pixels = _read_png(plot_training_curves(history, tmp_path / "h.png"))
    assert pixels.shape[:2] == (360, 1200)


def test_invalid_plot_input_raises(tmp_path):
    with pytest.raises(ValueError, match="tuple of image batches, one per view; received ndarray"):
        plot_view_pairs(np.zeros((2, 4, 4, 3)), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"same, non-zero number of images; received lengths"):
        plot_view_pairs((np.zeros((2, 4, 4, 3)), np.zeros((3, 4, 4, 3))), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"1 or 3 channels; received shape \(2, 4, 4, 2\)"):
        plot_view_pairs((np.zeros((2, 4, 4, 2)),), tmp_path / "x.png")
    with pytest.raises(ValueError, match="`max_pairs` must be an integer >= 1"):
        plot_view_pairs((np.zeros((2, 4, 4, 3)),), tmp_path / "x.png", max_pairs=0)
    with pytest.raises(ValueError, match="dict of metric name.*received list"):
        plot_training_curves([1.0, 2.0], tmp_path / "x.png")
    with pytest.raises(ValueError, match="no finite values"):
        plot_training_curves({"knn_accuracy": [float("nan")]}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
