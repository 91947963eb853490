"""PNG figures: augmented view pairs, training curves, data-efficiency and convergence curves,
2-D embedding maps.

matplotlib is imported inside the functions (it is only needed when a figure is drawn) and
drives the Agg canvas directly, so no display and no pyplot state are involved.
"""

import math
import os
import tempfile

import numpy as np

from keras_ssl.validation import check_int


def plot_view_pairs(views, path, max_pairs=8, title=None):
    """Draws the views of the same images side by side, one row per image.

    Args:
        views: tuple or list of ``float`` arrays in ``[0, 1]`` (or ``uint8``), each
            ``[N, height, width, channels]`` with 1 or 3 channels (or ``[N, height, width]``);
            view ``i`` of image ``n`` is ``views[i][n]``. Tensors are accepted.
        path: where the PNG is written; missing parent folders are created.
        max_pairs: at most this many images (rows) are drawn.
        title: optional figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: for no views, views of different lengths, wrong ranks or channel counts.
    """
    arrays = _check_views(views)
    check_int(max_pairs, "max_pairs", fix="pass e.g. 8.")
    rows = min(max_pairs, len(arrays[0]))
    columns = len(arrays)
    figure = new_figure((1.6 * columns, 1.6 * rows + (0.5 if title else 0.2)))
    axes = figure.subplots(rows, columns, squeeze=False)
    for column, array in enumerate(arrays):
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
                axis.set_title(f"view {column + 1}", fontsize=9)
            if column == 0:
                axis.set_ylabel(f"image {row + 1}", fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_training_curves(history, path, title=None):
    """Plots per-epoch training metrics: losses, probe accuracies and any other metric.

    The first panel holds every key containing ``"loss"``, the second every key containing
    ``"accuracy"`` (kNN/linear probes, online probes), and each remaining metric (for example
    ``embedding_std``, ``effective_rank``) gets a panel of its own. The x axis is the epoch,
    counted from 1. ``NaN`` and ``None`` entries (epochs where a probe did not run) are skipped,
    so a probe that runs every few epochs is drawn as markers joined across the gaps.

    Args:
        history: dict ``metric name -> list of per-epoch values`` (``keras.callbacks.History``'s
            ``history`` attribute, or the History object itself).
        path: where the PNG is written; missing parent folders are created.
        title: optional figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: when ``history`` is not a dict of sequences or holds no values.
    """
    history = getattr(history, "history", history)
    if not isinstance(history, dict):
        raise ValueError(
            f"`history` must be a dict of metric name -> list of per-epoch values; received "
            f"{type(history).__name__}. Fix: pass model.fit(...).history."
        )
    series = {}
    for name, values in history.items():
        values = np.asarray(
            [np.nan if value is None else value for value in np.ravel(values)], np.float64
        )
        if values.size and np.any(np.isfinite(values)):
            series[str(name)] = values
    if not series:
        raise ValueError(
            f"`history` holds no finite values; received keys {sorted(history)}. Fix: pass the "
            "history of a fit that ran at least one epoch."
        )
    losses = [name for name in series if "loss" in name]
    accuracies = [name for name in series if "accuracy" in name and name not in losses]
    others = [name for name in series if name not in losses and name not in accuracies]
    panels = []
    if losses:
        panels.append(("loss", losses))
    if accuracies:
        panels.append(("accuracy", accuracies))
    panels.extend((name, [name]) for name in others)

    num_epochs = max(len(values) for values in series.values())
    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = new_figure((6.0 * columns, 3.6 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis, (label, names) in zip(axes.flat, panels):
        for name in names:
            values = series[name]
            epochs = np.arange(1, len(values) + 1)
            finite = np.isfinite(values)
            sparse = not np.all(finite) or len(values) <= 20
            axis.plot(
                epochs[finite],
                values[finite],
                marker="o" if sparse else None,
                markersize=4,
                label=name,
            )
        axis.set_xlim(0.5, num_epochs + 0.5)
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
        if len(names) > 1 or label != names[0]:
            axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_data_efficiency(efficiency, path, title=None):
    """Test accuracy against the fraction of training labels, one line per encoder.

    Args:
        efficiency: the dict returned by ``keras_ssl.evaluation.data_efficiency``
            (``fractions`` and ``results: name -> {"mean": [...], "std": [...]}``).
        path: where the PNG is written; missing parent folders are created.
        title: optional figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: when ``efficiency`` lacks ``fractions`` or ``results``.
    """
    if not isinstance(efficiency, dict) or not {"fractions", "results"} <= set(efficiency):
        raise ValueError(
            "`efficiency` must be the dict returned by data_efficiency (keys 'fractions' and "
            f"'results'); received {_describe(efficiency)}. Fix: pass data_efficiency(...)."
        )
    fractions = np.asarray(efficiency["fractions"], np.float64) * 100
    figure = new_figure((6.0, 4.0))
    axis = figure.subplots()
    for name, row in efficiency["results"].items():
        mean, std = np.asarray(row["mean"]), np.asarray(row.get("std", np.zeros_like(row["mean"])))
        axis.errorbar(fractions, mean, yerr=std, marker="o", capsize=3, label=name)
    axis.set_xscale("log")
    axis.set_xticks(fractions, [f"{f:g}%" for f in fractions])
    axis.set_xlabel("labelled training examples (% of the training set, per class)")
    axis.set_ylabel("test accuracy")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(title or f"Data efficiency ({efficiency.get('protocol', '')})".strip())
    figure.tight_layout()
    return save_figure(figure, path)


def plot_convergence(curves, path, metric="test_accuracy", title=None):
    """Downstream training curves of several initialisations on one plot.

    Args:
        curves: dict ``name -> per-epoch dict`` (``fine_tune(...)["curves"]``), e.g.
            ``{"ssl": ..., "random_init": ...}``.
        path: where the PNG is written; missing parent folders are created.
        metric: the curve drawn on the left panel; the right panel draws ``loss`` when present.
        title: optional figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: when ``curves`` is empty or a curve lacks ``metric``.
    """
    if not isinstance(curves, dict) or not curves:
        raise ValueError(
            f"`curves` must be a non-empty dict name -> fine_tune(...)['curves']; received "
            f"{_describe(curves)}. Fix: pass {{'ssl': result['curves'], ...}}."
        )
    for name, curve in curves.items():
        if not isinstance(curve, dict) or metric not in curve:
            raise ValueError(
                f"`curves[{name!r}]` has no {metric!r} series; received {_describe(curve)}. "
                f"Fix: pass fine_tune(...)['curves'] or choose metric= among its keys."
            )
    panels = [metric] + (["loss"] if all("loss" in c for c in curves.values()) else [])
    figure = new_figure((5.5 * len(panels), 4.0))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, panel in zip(axes, panels):
        for name, curve in curves.items():
            values = np.asarray(curve[panel], np.float64)
            axis.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=4, label=name)
        axis.set_xlabel("fine-tuning epoch")
        axis.set_ylabel(panel)
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.legend(fontsize=8)
    figure.suptitle(title or "Convergence: SSL initialisation vs random initialisation")
    figure.tight_layout()
    return save_figure(figure, path)


def embed_2d(features, method="tsne", seed=0):
    """Maps ``[N, D]`` features to 2-D with t-SNE (scikit-learn) or UMAP (``umap-learn``).

    Args:
        features: ``[N, D]`` array, ``N >= 3``.
        method: ``"tsne"`` or ``"umap"`` (needs the ``umap-learn`` package).
        seed: random state of the embedding.

    Returns:
        ``float32`` array ``[N, 2]``.

    Raises:
        ValueError: for an unknown method, UMAP without ``umap-learn``, or fewer than 3 rows.
    """
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or len(features) < 3:
        raise ValueError(
            f"`features` must be [N, D] with N >= 3; received shape {features.shape}. "
            "Fix: pass the embeddings of at least 3 examples."
        )
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, (len(features) - 1) / 3))
        return (
            TSNE(2, perplexity=perplexity, init="pca", random_state=seed)
            .fit_transform(features)
            .astype(np.float32)
        )
    if method == "umap":
        try:
            import umap
        except ImportError as error:
            raise ValueError(
                "method='umap' needs the umap-learn package, which is not installed. "
                "Fix: pip install umap-learn, or use method='tsne'."
            ) from error
        return umap.UMAP(random_state=seed).fit_transform(features).astype(np.float32)
    raise ValueError(
        f"Unknown embedding method {method!r}; expected 'tsne' or 'umap'. Fix: pass one of them."
    )


def plot_embedding(points, labels, path, title=None, class_names=None):
    """Scatter plot of 2-D points coloured by class.

    Args:
        points: ``[N, 2]`` (e.g. from :func:`embed_2d`).
        labels: ``[N]`` integer class ids.
        path: where the PNG is written; missing parent folders are created.
        title: optional figure title.
        class_names: optional list of names indexed by class id, for the legend.

    Returns:
        ``path``.

    Raises:
        ValueError: for points that are not ``[N, 2]`` or labels of another length.
    """
    points, labels = np.asarray(points), np.asarray(labels).reshape(-1)
    if points.ndim != 2 or points.shape[1] != 2 or len(labels) != len(points):
        raise ValueError(
            f"`points` must be [N, 2] with one label each; received points {points.shape} and "
            f"{len(labels)} labels. Fix: pass embed_2d(features) and the matching labels."
        )
    figure = new_figure((6.5, 6.0))
    axis = figure.subplots()
    colours = _colours(len(np.unique(labels)))
    for colour, label in zip(colours, np.unique(labels)):
        chosen = labels == label
        name = class_names[label] if class_names is not None else str(label)
        axis.scatter(*points[chosen].T, s=4, color=colour, label=name)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.legend(fontsize=7, markerscale=3, loc="best")
    if title:
        axis.set_title(title)
    figure.tight_layout()
    return save_figure(figure, path)


def _colours(count):
    from matplotlib import colormaps

    colour_map = colormaps["tab10" if count <= 10 else "tab20"]
    return [colour_map(i % colour_map.N) for i in range(count)]


def _describe(value):
    if isinstance(value, dict):
        return f"dict with keys {sorted(map(str, value))}"
    return type(value).__name__


def new_figure(size):
    """A matplotlib figure of ``size`` inches ``(width, height)`` drawn by the Agg canvas,
    outside pyplot's global state (so the user's interactive backend, if any, is left alone and
    nothing needs closing). Every keras_ssl plot starts here and ends in :func:`save_figure`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path):
    """Writes the figure as a PNG through a temporary file in the destination folder (a failed
    write leaves no partial file); returns ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".png.tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            figure.savefig(file, format="png", dpi=100)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def _check_views(views):
    if hasattr(views, "shape") or not isinstance(views, (tuple, list)) or not views:
        raise ValueError(
            f"`views` must be a non-empty tuple of image batches, one per view; received "
            f"{type(views).__name__}. Fix: pass (view_1, view_2), each [N, H, W, C]."
        )
    arrays = []
    for index, view in enumerate(views):
        array = np.asarray(view)
        if array.ndim == 3:
            array = array[..., None]
        if array.ndim != 4 or array.shape[-1] not in (1, 3):
            raise ValueError(
                f"`views[{index}]` must be [N, height, width, channels] with 1 or 3 channels; "
                f"received shape {array.shape}. Fix: pass batched grayscale or RGB images."
            )
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / 255.0
        arrays.append(np.clip(array.astype(np.float32), 0.0, 1.0))
    lengths = [len(array) for array in arrays]
    if len(set(lengths)) != 1 or lengths[0] == 0:
        raise ValueError(
            f"Every view must hold the same, non-zero number of images; received lengths "
            f"{lengths}. Fix: pass the views of the same batch of images."
        )
    return arrays
