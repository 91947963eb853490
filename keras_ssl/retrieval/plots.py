"""A PNG grid of retrieval results: one row per query, the query then its nearest neighbours."""

import numpy as np

from keras_ssl.evaluation.plots import new_figure, save_figure
from keras_ssl.validation import check_int


def plot_neighbours(
    query_images,
    neighbour_images,
    path,
    query_titles=None,
    neighbour_titles=None,
    max_rows=16,
    max_neighbours=10,
    title=None,
):
    """Draws each query (first column, framed) followed by its neighbours, nearest first.

    Args:
        query_images: ``[Q, H, W, C]`` (or ``[Q, H, W]``), C = 1 or 3, ``uint8`` or float in
            ``[0, 1]``.
        neighbour_images: ``[Q, K, H, W, C]`` (or ``[Q, K, H, W]``), the neighbours' images.
        path: where the PNG is written (atomically; missing folders are created).
        query_titles: optional ``Q`` captions of the queries.
        neighbour_titles: optional ``Q x K`` captions (e.g. class and score).
        max_rows: at most this many queries are drawn.
        max_neighbours: at most this many neighbours per query are drawn.
        title: optional figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: for mismatched shapes, unsupported channel counts, captions of the wrong
            length, or non-positive ``max_rows`` / ``max_neighbours``.
    """
    check_int(max_rows, "max_rows")
    check_int(max_neighbours, "max_neighbours")
    queries = _images(query_images, "query_images", 4)
    neighbours = _images(neighbour_images, "neighbour_images", 5)
    if neighbours.shape[0] != queries.shape[0] or neighbours.shape[2:] != queries.shape[1:]:
        raise ValueError(
            f"`neighbour_images` must be [Q, K, H, W, C] matching `query_images` {queries.shape}; "
            f"received shape {neighbours.shape}. Fix: pass the neighbours of exactly these "
            "queries, with the same image size."
        )
    count, depth = queries.shape[0], neighbours.shape[1]
    query_titles = _titles(query_titles, (count,), "query_titles")
    neighbour_titles = _titles(neighbour_titles, (count, depth), "neighbour_titles")
    rows, columns = min(max_rows, count), 1 + min(max_neighbours, depth)
    figure = new_figure((1.3 * columns, 1.5 * rows + (0.5 if title else 0.2)))
    axes = figure.subplots(rows, columns, squeeze=False)
    for row in range(rows):
        for column in range(columns):
            axis = axes[row, column]
            image = queries[row] if column == 0 else neighbours[row, column - 1]
            if image.shape[-1] == 1:
                axis.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            caption = query_titles[row] if column == 0 else neighbour_titles[row][column - 1]
            if caption:
                axis.set_title(caption, fontsize=7)
            if column == 0:
                for spine in axis.spines.values():
                    spine.set_edgecolor("tab:blue")
                    spine.set_linewidth(2.5)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def _images(array, name, rank):
    array = np.asarray(array)
    if array.ndim == rank - 1:
        array = array[..., None]
    if array.ndim != rank or array.shape[-1] not in (1, 3) or not array.size:
        layout = "[Q, H, W, C]" if rank == 4 else "[Q, K, H, W, C]"
        raise ValueError(
            f"`{name}` must be a non-empty {layout} array with 1 or 3 channels; received shape "
            f"{array.shape}. Fix: add a channel axis for grayscale images (x[..., None])."
        )
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def _titles(titles, shape, name):
    if titles is None:
        return np.full(shape, "", dtype=object).tolist()
    rows = [list(row) for row in titles] if len(shape) == 2 else list(titles)
    valid = len(rows) == shape[0] and (len(shape) == 1 or all(len(r) == shape[1] for r in rows))
    if not valid:
        raise ValueError(
            f"`{name}` must have shape {shape} (one caption per image); received "
            f"{len(rows)} rows. Fix: pass one caption per drawn image, or None."
        )
    return rows
