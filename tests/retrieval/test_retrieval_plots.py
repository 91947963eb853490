import numpy as np
import pytest
from matplotlib.image import imread

from keras_ssl.retrieval import plot_neighbours
from keras_ssl.retrieval.search import format_neighbours

QUERIES = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
NEIGHBOURS = np.random.default_rng(1).integers(0, 256, (3, 4, 8, 8, 1), dtype=np.uint8)


def test_grid_is_written_atomically_with_one_row_per_query(tmp_path):
    path = plot_neighbours(
        QUERIES,
        NEIGHBOURS,
        tmp_path / "grid.png",
        query_titles=["a", "b", "c"],
        neighbour_titles=[["x"] * 4] * 3,
        max_neighbours=2,
        title="t",
    )
    image = imread(path)
    assert image.shape[0] > image.shape[1]  # 3 rows of 1 + 2 columns: taller than wide
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temporary file left
    colour = plot_neighbours(QUERIES[..., 0], NEIGHBOURS[..., 0], tmp_path / "gray.png")
    assert imread(colour).ndim == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"neighbour_images": NEIGHBOURS[:2]}, "matching `query_images`"),
        ({"neighbour_images": NEIGHBOURS[:, :, :4]}, "matching `query_images`"),
        ({"query_images": np.zeros((3, 8, 8, 2))}, "1 or 3 channels"),
        ({"query_titles": ["a"]}, "one caption per image"),
        ({"neighbour_titles": [["x"] * 3] * 3}, "one caption per image"),
        ({"max_rows": 0}, "max_rows"),
    ],
)
def test_bad_grid_inputs(tmp_path, kwargs, match):
    arguments = {"query_images": QUERIES, "neighbour_images": NEIGHBOURS, **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_neighbours(path=tmp_path / "grid.png", **arguments)
    assert not list(tmp_path.iterdir())


def test_printed_neighbours_skip_unfound_ones():
    result = {
        "workdir": "/run",
        "plot": "search/neighbours.png",
        "k": 2,
        "index_size": 1000,
        "index_split": "probe_train",
        "backend": "faiss",
        "queries": [
            {
                "query": "q.png",
                "neighbours": [
                    {"rank": 1, "id": 4, "label": 3, "class": "Dress", "score": 0.9},
                    {"rank": 2, "id": -1, "label": -1, "class": None, "score": None},
                ],
            }
        ],
    }
    text = format_neighbours(result)
    assert "  q.png: Dress 0.900 (#4)\n" in text
    assert (
        text.splitlines()[0]
        == "1 queries, 2 nearest of 1,000 probe_train images (faiss index, cosine):"
    )
    assert text.endswith("/run/search/neighbours.json and /run/search/neighbours.png")
