import numpy as np
import pytest
from matplotlib import image as mpimg

from keras_ssl.evaluation.samples import plot_model_samples, plot_sample_grid


def _images(n, value=None, channels=1, seed=0):
    if value is not None:
        return np.full((n, 6, 6, channels), value, np.float32)
    return np.random.default_rng(seed).random((n, 6, 6, channels)).astype(np.float32)


def test_grid_is_written_with_one_row_per_section_chunk(tmp_path):
    path = plot_sample_grid(
        tmp_path / "sub" / "grid.png",
        originals=_images(5),
        reconstructions=_images(5, seed=1),
        samples=(_images(3) * 255).astype(np.uint8),
        columns=4,
        title="grid",
    )
    picture = mpimg.imread(path)
    # 2 original rows + 2 reconstruction rows + 1 sample row: height 1.1 * 5 + 0.5 inches.
    assert picture.shape[0] == round(100 * (1.1 * 5 + 0.5))
    assert picture.shape[1] == round(100 * (1.1 * 4 + 1.2))


def test_black_and_white_images_are_drawn_as_such(tmp_path):
    # Only samples, all white: the grid holds pure white pixels inside the axes; all black:
    # pure black ones (vmin 0 / vmax 1, no per-image rescaling).
    white = mpimg.imread(plot_sample_grid(tmp_path / "w.png", samples=_images(2, 1.0)))
    black = mpimg.imread(plot_sample_grid(tmp_path / "b.png", samples=_images(2, 0.0)))
    assert (black[..., :3].sum(-1) == 0).sum() > 1000
    assert (white[..., :3].sum(-1) == 0).sum() < (black[..., :3].sum(-1) == 0).sum() / 10


class _Fake:
    def reconstruct(self, images):
        return 1.0 - np.asarray(images, np.float32)

    def sample(self, num_samples, seed=0):
        return np.random.default_rng(seed).random((num_samples, 6, 6, 1)).astype(np.float32)


def test_model_samples(tmp_path):
    path = plot_model_samples(_Fake(), _images(8), tmp_path / "m.png", num_samples=8, columns=8)
    assert mpimg.imread(path).shape[0] == round(100 * (1.1 * 3 + 0.2))
    path = plot_model_samples(_Fake(), _images(8), tmp_path / "n.png", num_samples=0, columns=8)
    assert mpimg.imread(path).shape[0] == round(100 * (1.1 * 2 + 0.2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "No images"),
        ({"reconstructions": _images(2)}, "reconstructions"),
        ({"originals": _images(3), "reconstructions": _images(2)}, "3 originals"),
        ({"samples": np.zeros((2, 6, 6, 2))}, "1 or 3"),
        ({"samples": np.zeros((6, 6))}, "samples"),
        ({"samples": _images(2), "columns": 0}, "columns"),
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_sample_grid(tmp_path / "x.png", **kwargs)


def test_model_without_sampling_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="reconstruct"):
        plot_model_samples(object(), _images(2), tmp_path / "x.png")
