"""PNG grids of images side by side: reconstructions (input, mask, prediction, original) and any
columns of images, one row per example."""

import numpy as np

from keras_ssl.evaluation.plots import new_figure, save_figure
from keras_ssl.validation import check_int

COLUMNS = ("input", "mask", "prediction", "original")


def _as_images(array, name, count=None, channels=(1, 3), reference="the originals'"):
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in channels:
        raise ValueError(
            f"`{name}` must be [N, height, width, channels] with {' or '.join(map(str, channels))} "
            f"channels; received shape {array.shape}. Fix: pass a batch of images "
            "(add a channel axis for grayscale: x[..., None])."
        )
    if count is not None and array.shape[:3] != count:
        raise ValueError(
            f"`{name}` must match {reference} [N, height, width] {count}; received shape "
            f"{array.shape}. Fix: pass the same examples in the same order."
        )
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def plot_reconstructions(inputs, masks, predictions, originals, path, max_rows=8, title=None):
    """Draws a reconstruction grid: rows are examples, columns input / mask / prediction /
    original.

    Args:
        inputs: what the model saw (corrupted or masked images) ``[N, H, W, C]``, C = 1 or 3,
            ``uint8`` or float (clipped to ``[0, 1]`` for display).
        masks: ``[N, H, W]`` or ``[N, H, W, 1]``, 1 (white) = kept pixel, 0 (black) = dropped or
            corrupted.
        predictions: the model's reconstructions ``[N, H, W, C]``.
        originals: the clean images ``[N, H, W, C]``.
        path: where the PNG is written; missing parent folders are created.
        max_rows: at most this many examples are drawn.
        title: optional figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: for wrong ranks, channel counts, mismatched sizes or a bad ``max_rows``.
    """
    _check_max_rows(max_rows)
    originals = _reference_images(originals, "originals")
    count = originals.shape[:3]
    columns = [
        _as_images(inputs, "inputs", count),
        _as_images(masks, "masks", count, channels=(1,)),
        _as_images(predictions, "predictions", count),
        originals,
    ]
    return _draw_columns(COLUMNS, columns, path, max_rows, title)


def plot_image_columns(columns, path, max_rows=8, title=None):
    """Draws images side by side: one column per ``(label, images)`` pair, one row per example.

    The colour examples use it for rows of (L channel, prediction, original).

    Args:
        columns: sequence of ``(label, images)``; ``images`` are ``[N, H, W]`` or
            ``[N, H, W, C]`` with C = 1 or 3, ``uint8`` or float (clipped to ``[0, 1]``); every
            column must hold the same examples as the LAST one (e.g. the originals).
        path: where the PNG is written; missing parent folders are created.
        max_rows: at most this many examples are drawn.
        title: optional figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: for no columns, wrong ranks or channel counts, columns of other sizes than
            the last one, or a bad ``max_rows``.
    """
    _check_max_rows(max_rows)
    if not columns:
        raise ValueError(
            "`columns` is empty; received no (label, images) pairs. Fix: pass e.g. "
            "[('input', x), ('original', y)]."
        )
    labels = [label for label, _ in columns]
    count = _reference_images(columns[-1][1], labels[-1]).shape[:3]
    reference = f"the `{labels[-1]}` column's"
    arrays = [_as_images(images, label, count, reference=reference) for label, images in columns]
    return _draw_columns(labels, arrays, path, max_rows, title)


def _reference_images(images, name):
    """``_as_images`` of the column the others must match; it must hold at least one image."""
    array = _as_images(images, name)
    if not array.shape[0]:
        raise ValueError(
            f"`{name}` holds no images; received shape (0, ...). Fix: pass at least one."
        )
    return array


def _check_max_rows(max_rows):
    check_int(max_rows, "max_rows", fix="pass e.g. 8.")


def _draw_columns(labels, columns, path, max_rows, title):
    """The grid itself: ``columns`` are checked float ``[N, H, W, C]`` arrays in ``[0, 1]``."""
    rows = min(max_rows, columns[0].shape[0])
    figure = new_figure((1.5 * len(columns), 1.5 * rows + (0.5 if title else 0.3)))
    axes = figure.subplots(rows, len(columns), squeeze=False)
    for column, (label, array) in enumerate(zip(labels, columns)):
        for row in range(rows):
            axis = axes[row, column]
            image = array[row]
            if image.shape[-1] == 1:
                axis.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(label, fontsize=9)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def reconstruction_grid(model, images, path, max_rows=8, seed=(0, 0), title=None):
    """Runs a reconstruction method on ``images`` and writes its grid.

    Works with any model offering ``reconstruct(images, seed)``: the denoising autoencoder
    (returns ``(corrupted, reconstructions)``; the mask column shows the corrupted values in
    black) and the context encoder (returns ``(masks, predictions, inpainted)``; the input
    column is the context ``B * x``, the prediction column the inpainted image).

    Args:
        model: a trained ``DenoisingAutoencoder`` or ``ContextEncoder``.
        images: held-out images ``[N, H, W, C]`` (uint8 or float in ``[0, 1]``).
        path: the PNG to write.
        max_rows: examples drawn (the first ``max_rows`` images).
        seed: ``[2]`` seed of the corruption / masks.
        title: optional figure title.

    Returns:
        ``path``.
    """
    images = np.asarray(images)[:max_rows]
    originals = _as_images(images, "images")
    outputs = model.reconstruct(images, seed)
    if len(outputs) == 3:  # context encoder
        masks, _, inpainted = outputs
        inputs, predictions = originals * masks, inpainted
    else:
        inputs, predictions = outputs
        masks = np.all(np.isclose(inputs, originals), axis=-1, keepdims=True)
        masks = masks.astype(np.float32)
    return plot_reconstructions(inputs, masks, predictions, originals, path, max_rows, title)
