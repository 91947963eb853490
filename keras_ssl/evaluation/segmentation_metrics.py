"""Segmentation metrics: mean IoU and pixel accuracy of per-pixel class predictions.

Convention: the IoU of class ``c`` is ``|gt == c and pred == c| / |gt == c or pred == c|``; the
mean IoU averages it over the classes present in the ground truth or the prediction (a class
absent from both has no defined IoU and is left out, not counted as 1 or 0). Background is a
class like any other.
"""

import numpy as np

from keras_ssl.validation import check_int


def segmentation_metrics(y_true, y_pred, num_classes):
    """Mean IoU (over classes present in ``y_true`` or ``y_pred``), pixel accuracy, per-class IoU.

    Args:
        y_true: integer masks ``[N, H, W]`` (or any shape) with values in ``[0, num_classes)``.
        y_pred: predicted class ids of the same shape.
        num_classes: number of classes, background included.

    Returns:
        ``{"mean_iou": float, "pixel_accuracy": float, "iou": [num_classes] float array with
        NaN for classes absent from both}``.

    Raises:
        ValueError: for mismatched shapes, empty masks or ids outside ``[0, num_classes)``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(
            f"`y_true` and `y_pred` must be non-empty masks of one shape; received shapes "
            f"{y_true.shape} and {y_pred.shape}. Fix: pass predicted class ids (argmax of the "
            "logits over the last axis) for the same images."
        )
    check_int(num_classes, "num_classes", fix="pass the number of classes, e.g. 21.")
    for name, mask in (("y_true", y_true), ("y_pred", y_pred)):
        if mask.min() < 0 or mask.max() >= num_classes:
            raise ValueError(
                f"`{name}` holds class ids in [{mask.min()}, {mask.max()}]; expected ids in "
                f"[0, {num_classes}). Fix: pass num_classes={int(mask.max()) + 1} or remap ids."
            )
    true, pred = y_true.reshape(-1).astype(np.int64), y_pred.reshape(-1).astype(np.int64)
    confusion = np.bincount(true * num_classes + pred, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )
    intersection = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    iou = np.full(num_classes, np.nan)
    present = union > 0
    iou[present] = intersection[present] / union[present]
    return {
        "mean_iou": float(np.mean(iou[present])),
        "pixel_accuracy": float(intersection.sum() / true.size),
        "iou": iou,
    }
