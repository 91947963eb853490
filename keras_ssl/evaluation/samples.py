"""PNG grid of a generative method's images: originals, their reconstructions, prior samples.

matplotlib is imported inside the functions (through ``plots``' Agg figure), so no display and
no pyplot state are involved.
"""

import numpy as np

from keras_ssl.evaluation.plots import new_figure, save_figure
from keras_ssl.validation import check_int


def plot_sample_grid(
    path, originals=None, reconstructions=None, samples=None, columns=8, title=None
):
    """Draws labelled rows of images: originals, their reconstructions, then samples.

    Originals and reconstructions alternate row by row (``columns`` images each), so every
    reconstruction sits under its original; samples fill the rows after them.

    Args:
        path: where the PNG is written; missing parent folders are created.
        originals: ``[N, H, W, C]`` images (``uint8``, or float in ``[0, 1]``), or ``None``.
        reconstructions: ``[N, H, W, C]`` reconstructions of ``originals`` (same ``N``), or
            ``None``.
        samples: ``[M, H, W, C]`` images generated from the prior, or ``None``.
        columns: images per row.
        title: optional figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: when no images are given, reconstructions come without their originals
            (or with another count), an array is not a batch of 1- or 3-channel images, or
            ``columns`` is not a positive int.
    """
    check_int(columns, "columns", fix="pass e.g. 8.")
    originals = _check_images(originals, "originals")
    reconstructions = _check_images(reconstructions, "reconstructions")
    samples = _check_images(samples, "samples")
    if originals is None and reconstructions is None and samples is None:
        raise ValueError(
            "No images to draw: received originals=None, reconstructions=None and samples=None. "
            "Fix: pass at least one batch of images."
        )
    if reconstructions is not None and (
        originals is None or len(originals) != len(reconstructions)
    ):
        count = None if originals is None else len(originals)
        raise ValueError(
            f"`reconstructions` must come with as many `originals`; received "
            f"{len(reconstructions)} reconstructions and {count} originals. Fix: pass the "
            "images that were reconstructed as `originals`."
        )
    rows = []  # (label, images of the row)
    if originals is not None:
        for start in range(0, len(originals), columns):
            rows.append(("original", originals[start : start + columns]))
            if reconstructions is not None:
                rows.append(("reconstruction", reconstructions[start : start + columns]))
    if samples is not None:
        for start in range(0, len(samples), columns):
            rows.append(("sample", samples[start : start + columns]))
    width = max(len(images) for _, images in rows)
    figure = new_figure((1.1 * width + 1.2, 1.1 * len(rows) + (0.5 if title else 0.2)))
    axes = figure.subplots(len(rows), width, squeeze=False)
    for row, (label, images) in enumerate(rows):
        for column in range(width):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column >= len(images):
                axis.set_visible(False)
                continue
            image = images[column]
            if image.shape[-1] == 1:
                axis.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                axis.imshow(image)
            if column == 0:
                axis.set_ylabel(label, fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_model_samples(model, images, path, num_samples=16, seed=0, columns=8, title=None):
    """Draws ``images``, ``model.reconstruct(images)`` and ``model.sample(num_samples, seed)``.

    Args:
        model: a generative method with ``reconstruct(images)`` and ``sample(n, seed)`` (the
            ``VAE``, ``BiGAN``).
        images: ``[N, H, W, C]`` images to reconstruct (``uint8`` or float in ``[0, 1]``).
        path: where the PNG is written.
        num_samples: images drawn from the prior (0 for none).
        seed: seed of the prior draws.
        columns: images per row.
        title: optional figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: when ``model`` cannot reconstruct and sample, or for bad images.
    """
    if not (
        callable(getattr(model, "reconstruct", None)) and callable(getattr(model, "sample", None))
    ):
        raise ValueError(
            f"`model` must have reconstruct(images) and sample(num_samples, seed); received "
            f"{type(model).__name__}. Fix: pass a generative method such as keras_ssl's VAE "
            "or BiGAN."
        )
    reconstructions = model.reconstruct(images)
    samples = model.sample(num_samples, seed=seed) if num_samples else None
    return plot_sample_grid(
        path,
        originals=images,
        reconstructions=reconstructions,
        samples=samples,
        columns=columns,
        title=title,
    )


def _check_images(images, name):
    if images is None:
        return None
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or len(array) == 0:
        raise ValueError(
            f"`{name}` must be a non-empty batch [N, height, width, channels] with 1 or 3 "
            f"channels; received shape {array.shape}. Fix: pass batched grayscale or RGB images."
        )
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)
