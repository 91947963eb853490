"""Plots of segmentation transfer: label efficiency curves and prediction grids."""

import numpy as np

from keras_ssl.evaluation.plots import new_figure, save_figure


def plot_label_efficiency(transfer, path, title=None):
    """mIoU against label fraction, one line per (init, mode), from :func:`segmentation_transfer`.

    Args:
        transfer: the dict returned by :func:`segmentation_transfer`.
        path: PNG path (parent folders are created).
        title: optional title.

    Returns:
        ``path``.
    """
    figure = new_figure((6.0, 4.0))
    axis = figure.subplots()
    percents = [f * 100 for f in transfer["fractions"]]
    for init, by_mode in transfer["results"].items():
        for mode, by_fraction in by_mode.items():
            values = [by_fraction[f"{f:g}"]["mean_iou"] for f in transfer["fractions"]]
            style = "-" if init == "ssl" else "--"
            axis.plot(percents, values, style, marker="o", label=f"{init} {mode}")
    axis.set_xscale("log")
    axis.set_xticks(percents, [f"{p:g}%" for p in percents])
    axis.set_xlabel("labelled training images (% of the training set)")
    axis.set_ylabel("test mean IoU")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(title or "Segmentation label efficiency (U-Net)")
    figure.tight_layout()
    return save_figure(figure, path)


def plot_segmentation_grid(images, masks, predictions, num_classes, path):
    """One row per image: the image, its ground truth, then each named prediction.

    Args:
        images: ``uint8`` ``[n, H, W, C]``.
        masks: ``[n, H, W]`` ground truth class ids.
        predictions: ``{name: [n, H, W] class ids}``.
        num_classes: number of classes (fixes the colours).
        path: PNG path.

    Returns:
        ``path``.
    """
    columns = [("image", None), ("ground truth", masks), *predictions.items()]
    rows = len(images)
    figure = new_figure((1.6 * len(columns), 1.6 * rows + 0.3))
    axes = np.asarray(figure.subplots(rows, len(columns), squeeze=False))
    for row in range(rows):
        for column, (name, values) in enumerate(columns):
            axis = axes[row, column]
            if values is None:
                image = images[row]
                axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
            else:
                axis.imshow(values[row], cmap="tab20", vmin=0, vmax=max(num_classes - 1, 1))
            axis.set_axis_off()
            if row == 0:
                axis.set_title(name, fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path)
