"""Self-distillation losses: DINO's teacher-student cross-entropy over multi-crop views.

The pure functions take the teacher centre as an argument and never update it: the method owns
the centre (a ``keras.Variable``) and its EMA. Per-example losses are returned so that under a
``tf.distribute`` strategy each replica averages its own examples and the mean over replicas is
the single-device loss on the global batch (the loss has no cross-example terms; only the centre
is a batch statistic, which :func:`batch_center` all-reduces).
"""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.validation import check_positive_number


def _check_temperature(value, name):
    if tf.is_tensor(value) or isinstance(value, keras.Variable):
        return  # scheduled temperatures are scalar tensors
    fix = "use DINO's values (student_temp=0.1, teacher_temp 0.04 warmed up to 0.07)."
    check_positive_number(value, name, fix)


def _as_crops(logits, name):
    if isinstance(logits, (list, tuple)):
        if not logits:
            raise ValueError(
                f"`{name}` must hold at least one crop; received an empty {type(logits).__name__}."
                " Fix: pass one [batch, K] tensor per crop, or a stacked [crops, batch, K] tensor."
            )
        logits = tf.stack([tf.cast(tf.convert_to_tensor(x), tf.float32) for x in logits])
    logits = tf.cast(tf.convert_to_tensor(logits), tf.float32)
    if logits.shape.rank != 3:
        raise ValueError(
            f"`{name}` must be [crops, batch, K] (or a list of [batch, K] per crop); received "
            f"shape {tuple(logits.shape)}. Fix: stack the per-crop outputs of the head."
        )
    return logits


def teacher_probabilities(teacher_logits, center=None, teacher_temp=0.04):
    """DINO's teacher targets: ``softmax((t - c) / teacher_temp)`` over the last axis.

    Centring (subtracting ``c``) keeps one prototype from dominating; a low temperature
    sharpens. Together they avoid both collapse modes (uniform and one-hot outputs).

    Args:
        teacher_logits: ``[..., K]`` teacher head outputs.
        center: ``[K]`` (or ``[1, K]``) centre ``c``, or ``None`` for no centring.
        teacher_temp: teacher temperature (a positive number or scalar tensor).

    Returns:
        ``float32`` probabilities of the same shape, with the gradient stopped.

    References:
        Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers",
        https://arxiv.org/abs/2104.14294
    """
    _check_temperature(teacher_temp, "teacher_temp")
    logits = tf.cast(tf.convert_to_tensor(teacher_logits), tf.float32)
    if center is not None:
        center = tf.cast(tf.convert_to_tensor(center), tf.float32)
        size = logits.shape[-1]
        if center.shape.rank not in (1, 2) or (
            center.shape[-1] is not None and size is not None and center.shape[-1] != size
        ):
            raise ValueError(
                f"`center` must be [K] or [1, K] with K = {size} (the number of prototypes); "
                f"received shape {tuple(center.shape)}. Fix: keep one centre value per output."
            )
        logits = logits - tf.reshape(center, [-1])
    temperature = tf.cast(teacher_temp, tf.float32)
    return tf.stop_gradient(tf.nn.softmax(logits / temperature, axis=-1))


def dino_loss(teacher_logits, student_logits, center=None, student_temp=0.1, teacher_temp=0.04):
    """DINO: cross-entropy of the student's crops against the teacher's other global crops.

    The teacher's crop ``g`` gives targets ``q_g = softmax((t_g - c) / teacher_temp)`` (no
    gradient); the student's crop ``v`` gives ``log p_v = log_softmax(s_v / student_temp)``.
    The loss of an image averages ``H(q_g, p_v) = -sum_k q_g[k] log p_v[k]`` over every pair
    ``(g, v)`` with ``v != g``: the ``G`` teacher crops are the global crops, which are also the
    first ``G`` student crops, and a crop is never compared with itself (DINO, Algorithm 1 for
    ``G = V = 2``; multi-crop as in the paper's Eq. 3, averaged over the ``G (V - 1)`` pairs).

    Args:
        teacher_logits: ``[G, n, K]`` teacher head outputs of the ``G`` global crops of ``n``
            images (or a list of ``G`` tensors ``[n, K]``).
        student_logits: ``[V, n, K]`` student head outputs of all ``V >= 2`` crops, global crops
            first in the teacher's order, then local crops (or a list of ``V`` tensors).
        center: ``[K]`` (or ``[1, K]``) teacher centre ``c``, or ``None`` for no centring.
            Read only.
        student_temp: student temperature (DINO: 0.1).
        teacher_temp: teacher temperature, a positive number or scalar tensor (DINO: 0.04
            warmed up linearly to 0.07).

    Returns:
        ``[n]`` ``float32`` per-image losses; their mean over the (global) batch is the loss.

    References:
        Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers",
        https://arxiv.org/abs/2104.14294
    """
    _check_temperature(student_temp, "student_temp")
    teacher_logits = _as_crops(teacher_logits, "teacher_logits")
    student_logits = _as_crops(student_logits, "student_logits")
    global_crops, crops = teacher_logits.shape[0], student_logits.shape[0]
    if crops < global_crops or crops < 2:
        raise ValueError(
            f"dino_loss needs at least 2 student crops, the first ones being the teacher's "
            f"{global_crops} global crops; received {crops} student crops and {global_crops} "
            "teacher crops. Fix: pass the student outputs of all crops (global crops first)."
        )
    for axis, what in ((1, "batch size"), (2, "number of outputs K")):
        a, b = teacher_logits.shape[axis], student_logits.shape[axis]
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"Teacher and student logits must have the same {what}; received teacher "
                f"shape {tuple(teacher_logits.shape)} and student shape "
                f"{tuple(student_logits.shape)}. Fix: use heads of the same out_dim on the same "
                "images."
            )
    targets = teacher_probabilities(teacher_logits, center, teacher_temp)
    log_probs = tf.nn.log_softmax(student_logits / float(student_temp), axis=-1)
    # sum_{g} sum_{v != g} q_g . log p_v = sum_g q_g . (sum_v log p_v - log p_g)
    others = tf.reduce_sum(log_probs, axis=0, keepdims=True) - log_probs[:global_crops]
    pairs = global_crops * (crops - 1)
    return -tf.reduce_sum(targets * others, axis=[0, 2]) / float(pairs)


def teacher_entropy(teacher_logits, center=None, teacher_temp=0.04):
    """Mean entropy ``-sum_k q[k] log q[k]`` of DINO's teacher targets over crops and images.

    It watches both collapse modes: about ``log K`` when the targets are uniform, 0 when they
    are one-hot.

    Args:
        teacher_logits: ``[..., K]`` teacher head outputs.
        center: ``[K]`` (or ``[1, K]``) centre, or ``None``; see :func:`teacher_probabilities`.
        teacher_temp: teacher temperature (a positive number or scalar tensor).

    Returns:
        A ``float32`` scalar (no gradient).

    References:
        Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers",
        https://arxiv.org/abs/2104.14294
    """
    targets = teacher_probabilities(teacher_logits, center, teacher_temp)
    return -tf.reduce_mean(tf.reduce_sum(tf.math.xlogy(targets, targets), axis=-1))


def batch_center(teacher_logits):
    """The mean teacher output over crops and the GLOBAL batch, the statistic DINO's centre
    follows by EMA: ``c <- m c + (1 - m) batch_center``.

    Under a ``tf.distribute`` strategy the sum and the count are all-reduced over replicas, so
    every replica gets the centre of one device on the global batch.

    Args:
        teacher_logits: ``[G, n, K]`` teacher head outputs of ``G`` crops of this replica's
            ``n`` images (or a list of ``G`` tensors ``[n, K]``).

    Returns:
        ``[K]`` ``float32``.

    References:
        Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers",
        https://arxiv.org/abs/2104.14294
    """
    logits = _as_crops(teacher_logits, "teacher_logits")
    total = distribute.all_reduce_sum(tf.reduce_sum(logits, axis=[0, 1]))
    shape = tf.shape(logits)
    count = distribute.all_reduce_sum(tf.cast(shape[0] * shape[1], tf.float32))
    return total / count


def dino_terms(teacher_logits, student_logits, center=None, student_temp=0.1, teacher_temp=0.04):
    """DINO's loss and teacher entropy on this replica's images, and the batch centre.

    See :func:`dino_loss` for the arguments.

    Returns:
        ``(terms, center)``: ``terms`` maps ``loss`` (the mean of :func:`dino_loss` over the
        images) and ``teacher_entropy`` (:func:`teacher_entropy`) to ``float32`` scalars;
        ``center`` is :func:`batch_center` of the teacher logits, ``[K]``.
    """
    losses = dino_loss(teacher_logits, student_logits, center, student_temp, teacher_temp)
    entropy = teacher_entropy(teacher_logits, center, teacher_temp)
    terms = {"loss": tf.reduce_mean(losses), "teacher_entropy": entropy}
    return terms, batch_center(teacher_logits)


@keras.saving.register_keras_serializable(package="keras_ssl")
class DINOLoss(keras.losses.Loss):
    """``keras.losses.Loss`` form of :func:`dino_loss` without centring, on one device.

    Call it as ``loss(teacher_logits, student_logits)`` (targets first, as Keras losses take
    ``y_true, y_pred``). The DINO method calls :func:`dino_loss` with its centre instead.

    Args:
        student_temp: student temperature (DINO: 0.1).
        teacher_temp: teacher temperature (DINO: 0.04 to 0.07).
        name: loss name.
    """

    def __init__(self, student_temp=0.1, teacher_temp=0.04, name="dino_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        _check_temperature(student_temp, "student_temp")
        _check_temperature(teacher_temp, "teacher_temp")
        self.student_temp = student_temp
        self.teacher_temp = teacher_temp

    def call(self, y_true, y_pred):
        return dino_loss(
            y_true, y_pred, student_temp=self.student_temp, teacher_temp=self.teacher_temp
        )

    def get_config(self):
        return {
            **super().get_config(),
            "student_temp": self.student_temp,
            "teacher_temp": self.teacher_temp,
        }
