"""DINO: self-distillation with no labels, a centred and sharpened EMA teacher, multi-crop."""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.backbones.vit import DropPath
from keras_ssl.layers.dino_head import DINOHead
from keras_ssl.losses.distillation import dino_loss, teacher_probabilities
from keras_ssl.methods.base import check_epochs
from keras_ssl.methods.momentum import MomentumMethod
from keras_ssl.methods.multicrop_views import (
    check_multicrop_views,
    encode_at_any_size,
    size_groups,
)
from keras_ssl.validation import check_in_range, check_int, check_positive_number

_GLOBAL_VIEWS = 2


def _without_stochastic_depth(network):
    """Sets every ``DropPath`` and ``Dropout`` rate in ``network`` to 0 (DINO's teacher has none).

    The teacher is a structural copy of the student, whose ViT may use stochastic depth; DINO
    builds its teacher without it, while keeping training-mode BatchNorm.
    """
    stack = [network]
    while stack:
        layer = stack.pop()
        if isinstance(layer, (DropPath, keras.layers.Dropout)):
            layer.rate = 0.0
        stack.extend(getattr(layer, "layers", []))


@keras.saving.register_keras_serializable(package="keras_ssl")
class DINO(MomentumMethod):
    """DINO (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers",
    https://arxiv.org/abs/2104.14294).

    A student (encoder + :class:`~keras_ssl.layers.DINOHead`) learns to match a teacher: EMA copies
    of the encoder and head (momentum 0.996 rising to 1 on a cosine over the whole run). The teacher
    sees the 2 global crops; the student sees every crop. For each image the loss averages the
    cross-entropies between the teacher's distribution on one global crop and the student's
    distribution on every *other* crop (:func:`~keras_ssl.losses.dino_loss`). Collapse is avoided by
    centring the teacher outputs with ``c`` (an EMA, momentum ``center_momentum``, of the batch mean
    of the teacher outputs, updated after each step from the global batch) and sharpening them with
    a low temperature: ``teacher_temp`` after a linear warm-up from ``warmup_teacher_temp`` over
    ``warmup_teacher_temp_epochs`` epochs (the paper: 0.04 to 0.07 over the first 30 epochs). The
    prototypes (last layer) get no gradient during the first ``freeze_last_layer_epochs`` (1).
    Schedules are in epochs and converted with the real steps per epoch of ``fit`` (see
    :class:`~keras_ssl.methods.SSLMethod`); ``optimizer.iterations`` drives them, so they resume
    with the optimizer. A run shorter than the warm-up ends before the temperature reaches
    ``teacher_temp``: scale the warm-up with the run (the paper's is 30% of 100 epochs).

    Multi-crop: views 0 and 1 are global crops of the encoder's input size; views 2, 3, ... are
    local crops (``keras_ssl.augment.multicrop``, the default augmenter). Local crops run
    through the student encoder at their own, smaller size (one pass per size, as in DINO):
    ResNets pool over any size and the ViT resamples its position embeddings, so a 12 px local
    crop of a 28 px image costs about (12/28)^2 = 18% of a global crop. Encoders that only take
    their input size are detected at construction: build the augmenter with
    ``local_size`` equal to the global size instead, which resizes local crops to the encoder
    input (the same views at several times the cost: 2 + 6 crops then take 8 full passes
    instead of about 3).

    Evaluation and export use the TEACHER backbone, as DINO recommends (its features are
    better): ``model(images)`` / ``predict`` return teacher features and :attr:`export_encoder`
    is the teacher encoder. ``model.encoder`` is the (trained) student.

    BatchNorm (ResNet encoders, ``head_batch_norm``): the teacher runs in training mode with its
    own moving statistics (see ``keras_ssl.methods.momentum``); on several replicas the
    BatchNorms of backbone, head and teacher are synchronised by default, as DINO does with
    SyncBN (``synchronized_bn``). The teacher has no
    stochastic depth or dropout (DINO gives only the student ViT ``drop_path_rate``).

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]``), e.g.
            ``keras_ssl.backbones.ViTSmall((224, 224, 3), patch_size=16)``.
        augmenter: view generator; default ``keras_ssl.augment.multicrop.multicrop`` for the
            encoder's input shape (2 global + 8 local crops).
        out_dim: number of prototypes ``K`` (DINO: 65536).
        hidden_dim: hidden width of the head's MLP (DINO: 2048).
        bottleneck_dim: bottleneck before the L2 normalisation (DINO: 256).
        head_layers: Dense layers of the head's MLP (DINO: 3).
        head_batch_norm: BatchNorm in the head's MLP (DINO's ``use_bn_in_head``: off).
        norm_last_layer: keep the prototype magnitudes fixed at 1 (DINO's default).
        synchronized_bn: global BatchNorm in encoder and head; ``None``: on several replicas
            (see :class:`~keras_ssl.methods.SSLMethod`).
        student_temp: student temperature (DINO: 0.1).
        teacher_temp: teacher temperature after the warm-up (DINO: 0.04 in its code, 0.07 in
            the paper's ViT-S runs with warm-up; 0.07 here).
        warmup_teacher_temp: teacher temperature at step 0 (DINO: 0.04).
        warmup_teacher_temp_epochs: length of the linear warm-up in epochs (DINO: 30); 0 uses
            ``teacher_temp`` from the start.
        center_momentum: EMA momentum of the centre (DINO: 0.9).
        freeze_last_layer_epochs: epochs during which no gradient reaches the prototypes
            (DINO: 1; 0 never freezes).
        momentum, final_momentum, momentum_epochs: teacher EMA schedule (DINO: 0.996 to 1 on
            a cosine over the whole run; see :class:`MomentumMethod`).
        probe_classes: classes of the online linear probe (on teacher features of view 0).
    """

    default_preset = "multicrop"

    loss_terms = ("loss", "teacher_entropy")

    def __init__(
        self,
        encoder,
        augmenter=None,
        out_dim=65536,
        hidden_dim=2048,
        bottleneck_dim=256,
        head_layers=3,
        head_batch_norm=False,
        norm_last_layer=True,
        synchronized_bn=None,
        student_temp=0.1,
        teacher_temp=0.07,
        warmup_teacher_temp=0.04,
        warmup_teacher_temp_epochs=30,
        center_momentum=0.9,
        freeze_last_layer_epochs=1,
        momentum=0.996,
        final_momentum=1.0,
        momentum_epochs=None,
        probe_classes=None,
        **kwargs,
    ):
        for old, new in (
            ("warmup_teacher_temp_steps", "warmup_teacher_temp_epochs"),
            ("freeze_last_layer_steps", "freeze_last_layer_epochs"),
        ):
            if old in kwargs:
                raise ValueError(
                    f"`{old}` was replaced by `{new}` (in epochs, converted with fit's real "
                    f"steps per epoch); received {old}={kwargs[old]!r}. Fix: pass {new}."
                )
        super().__init__(
            encoder,
            augmenter=augmenter,
            momentum=momentum,
            final_momentum=final_momentum,
            momentum_epochs=momentum_epochs,
            probe_classes=probe_classes,
            synchronized_bn=synchronized_bn,
            **kwargs,
        )
        temperature_fix = (
            "use DINO's student_temp=0.1, warmup_teacher_temp=0.04, teacher_temp=0.07."
        )
        self.student_temp = check_positive_number(student_temp, "student_temp", temperature_fix)
        self.teacher_temp = check_positive_number(teacher_temp, "teacher_temp", temperature_fix)
        self.warmup_teacher_temp = check_positive_number(
            warmup_teacher_temp, "warmup_teacher_temp", temperature_fix
        )
        self.warmup_teacher_temp_epochs = check_epochs(
            warmup_teacher_temp_epochs, "warmup_teacher_temp_epochs"
        )
        self.center_momentum = check_in_range(
            center_momentum, "center_momentum", 0, 1, "use DINO's 0.9."
        )
        self.freeze_last_layer_epochs = check_epochs(
            freeze_last_layer_epochs, "freeze_last_layer_epochs"
        )
        check_int(head_layers, "head_layers", 1, "use DINO's 3 (two hidden layers, bottleneck).")
        self.out_dim = out_dim
        self.hidden_dim = hidden_dim
        self.bottleneck_dim = bottleneck_dim
        self.head_layers = head_layers
        self.head_batch_norm = head_batch_norm
        self.norm_last_layer = norm_last_layer
        self.head = DINOHead(
            out_dim=out_dim,
            hidden_dim=hidden_dim,
            bottleneck_dim=bottleneck_dim,
            num_layers=head_layers,
            batch_norm=head_batch_norm,
            norm_last_layer=norm_last_layer,
            synchronized=self.batch_norm_synchronized,
            dtype="float32",  # cosine logits / 0.04 need float32 under mixed precision
            name="head",
        )
        self.center = self.add_weight(
            shape=(out_dim,), initializer="zeros", trainable=False, autocast=False, name="center"
        )
        check_multicrop_views(
            "DINO", self.augmenter, self.encoder, self.image_shape, "global views", "local crops"
        )

    # ----------------------------------------------------------------------------- hooks

    def build_heads(self, feature_shape):
        self.head.build(feature_shape)
        self.teacher_encoder = self.make_teacher(self.encoder)
        self.teacher_head = self.make_teacher(self.head)
        _without_stochastic_depth(self.teacher_encoder)

    def view_shape(self, index):
        """Global views (0, 1) must match the encoder input; local views may be any size."""
        if index < _GLOBAL_VIEWS:
            return self.image_shape
        return (None, None, self.image_shape[-1])

    @property
    def export_encoder(self):
        """The backbone to evaluate and export: the teacher encoder (DINO, Sec. 3.1)."""
        return self.teacher_encoder

    @property
    def _warms_up(self):
        return (
            bool(self.warmup_teacher_temp_epochs) and self.warmup_teacher_temp != self.teacher_temp
        )

    @property
    def uses_epoch_schedules(self):
        return super().uses_epoch_schedules or self._warms_up or bool(self.freeze_last_layer_epochs)

    def teacher_temp_at(self, step):
        """Teacher temperature at optimizer step ``step`` (linear warm-up over
        ``warmup_teacher_temp_epochs`` of the run's plan, then constant)."""
        if not self._warms_up:
            return tf.constant(self.teacher_temp, tf.float32)
        warmup = tf.maximum(self.epochs_to_steps(self.warmup_teacher_temp_epochs), 1.0)
        progress = tf.minimum(tf.cast(step, tf.float32) / warmup, 1.0)
        return self.warmup_teacher_temp + (self.teacher_temp - self.warmup_teacher_temp) * progress

    def prototypes_frozen_at(self, step):
        """Whether the prototypes get no gradient at optimizer step ``step`` (a bool tensor for
        the first ``freeze_last_layer_epochs`` of the plan; ``None`` when they never freeze)."""
        if not self.freeze_last_layer_epochs:
            return None
        frozen = self.epochs_to_steps(self.freeze_last_layer_epochs)
        return tf.cast(step, tf.float32) < frozen

    def compute_ssl_loss(self, views, training):
        if len(views) < _GLOBAL_VIEWS:
            raise ValueError(
                f"DINO needs 2 global views (then any number of local views); received "
                f"{len(views)} view(s). Fix: use keras_ssl.augment.multicrop.multicrop(...)."
            )
        batch = tf.shape(views[0])[0]
        optimizer = getattr(self, "optimizer", None)  # None before compile()
        step = optimizer.iterations if optimizer is not None else 0
        global_batch = tf.concat(views[:_GLOBAL_VIEWS], axis=0)
        features = [self.encoder(global_batch, training=training)]
        for group in size_groups(views[_GLOBAL_VIEWS:]):
            features.append(encode_at_any_size(self.encoder, tf.concat(group, 0), training))
        freeze = self.prototypes_frozen_at(step)
        student = self.head(
            tf.concat(features, axis=0), training=training, freeze_prototypes=freeze
        )
        teacher_features = self.teacher_encoder(global_batch, training=training)
        teacher = self.teacher_head(teacher_features, training=training)
        student = tf.reshape(tf.cast(student, tf.float32), [len(views), batch, self.out_dim])
        teacher = tf.reshape(tf.cast(teacher, tf.float32), [_GLOBAL_VIEWS, batch, self.out_dim])
        teacher = tf.stop_gradient(teacher)
        temperature = self.teacher_temp_at(step)
        losses = dino_loss(teacher, student, self.center, self.student_temp, temperature)
        targets = teacher_probabilities(teacher, self.center, temperature)
        entropy = -tf.reduce_mean(tf.reduce_sum(tf.math.xlogy(targets, targets), axis=-1))
        # The centre follows the mean teacher output of the GLOBAL batch (all replicas).
        total = distribute.all_reduce_sum(tf.reduce_sum(teacher, axis=[0, 1]))
        count = distribute.all_reduce_sum(tf.cast(_GLOBAL_VIEWS * batch, tf.float32))
        terms = {"loss": tf.reduce_mean(losses), "teacher_entropy": entropy}
        features = tf.cast(teacher_features[:batch], tf.float32)
        return terms, features, {"batch_center": total / count}

    def after_optimizer_step(self, batch_center):
        super().after_optimizer_step()  # EMA of the teacher encoder and head
        m = self.center_momentum
        self.center.assign(self.center * m + batch_center * (1.0 - m))

    # ------------------------------------------------------------------------- checks
    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        return {
            **super().get_config(),
            "out_dim": self.out_dim,
            "hidden_dim": self.hidden_dim,
            "bottleneck_dim": self.bottleneck_dim,
            "head_layers": self.head_layers,
            "head_batch_norm": self.head_batch_norm,
            "norm_last_layer": self.norm_last_layer,
            "student_temp": self.student_temp,
            "teacher_temp": self.teacher_temp,
            "warmup_teacher_temp": self.warmup_teacher_temp,
            "warmup_teacher_temp_epochs": self.warmup_teacher_temp_epochs,
            "center_momentum": self.center_momentum,
            "freeze_last_layer_epochs": self.freeze_last_layer_epochs,
        }
