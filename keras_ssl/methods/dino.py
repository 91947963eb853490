"""DINO: self-distillation with no labels, a centred and sharpened EMA teacher, multi-crop."""

import keras
import tensorflow as tf

from keras_ssl.layers.dino_head import DINOHead
from keras_ssl.layers.drop_path import without_stochastic_depth
from keras_ssl.losses.distillation import dino_terms
from keras_ssl.methods.base import check_epochs
from keras_ssl.methods.epoch_schedules import linear_warmup, optimizer_step, reject_step_arguments
from keras_ssl.methods.momentum import MomentumMethod
from keras_ssl.methods.multicrop_views import LARGE_CROPS, MultiCropMethod
from keras_ssl.validation import check_in_range, check_int, check_positive_number


@keras.saving.register_keras_serializable(package="keras_ssl")
class DINO(MultiCropMethod, MomentumMethod):
    """DINO (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers",
    https://arxiv.org/abs/2104.14294).

    A student (encoder + :class:`~keras_ssl.layers.DINOHead`) learns to match a teacher, EMA
    copies of the encoder and head (see :class:`MomentumMethod`). The teacher sees the 2 global
    crops, the student every crop; the loss compares each teacher crop with every *other* student
    crop (:func:`~keras_ssl.losses.dino_loss`). Collapse is avoided by centring the teacher
    outputs with ``c`` (an EMA, momentum ``center_momentum``, of the global batch's mean teacher
    output, :func:`~keras_ssl.losses.distillation.batch_center`) and sharpening them with a low
    temperature: ``teacher_temp`` after a linear warm-up from ``warmup_teacher_temp`` over
    ``warmup_teacher_temp_epochs`` epochs (the paper: 0.04 to 0.07 over the first 30 epochs).
    The prototypes (last layer) get no gradient during the first ``freeze_last_layer_epochs``
    (1). Schedules are in epochs (``methods.epoch_schedules``). A run shorter than the warm-up
    ends before the temperature reaches ``teacher_temp``: scale the warm-up with the run (the
    paper's is 30% of 100 epochs).

    Multi-crop: views 0 and 1 are global crops of the encoder's input size, views 2, 3, ...
    local crops encoded at their own size (see ``methods.multicrop_views.MultiCropMethod``).

    Evaluation and export use the TEACHER backbone, as DINO recommends (its features are
    better): ``model(images)`` / ``predict`` return teacher features and :attr:`export_encoder`
    is the teacher encoder. ``model.encoder`` is the (trained) student.

    BatchNorm (ResNet encoders, ``head_batch_norm``): the teacher keeps its own statistics (see
    :class:`MomentumMethod`), all synchronised on several replicas as DINO's SyncBN. The teacher
    has no stochastic depth or dropout (DINO gives only the student ViT ``drop_path_rate``).

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]``), e.g.
            ``keras_ssl.backbones.ViTSmall((224, 224, 3), patch_size=16)``.
        augmenter: view generator; default ``augment.multicrop.multicrop`` (2 global, 8 local).
        out_dim, hidden_dim, bottleneck_dim: the head's sizes (see
            :class:`~keras_ssl.layers.DINOHead`; DINO: 65536 prototypes, 2048, 256).
        head_layers, head_batch_norm, norm_last_layer: the head's ``num_layers`` (DINO: 3),
            ``batch_norm`` (DINO's ``use_bn_in_head``: off) and ``norm_last_layer`` (DINO: on).
        synchronized_bn: global BatchNorm in encoder and head; ``None``: on several replicas.
        student_temp: student temperature (DINO: 0.1).
        teacher_temp: teacher temperature after the warm-up (DINO: 0.04 in its code, 0.07 in
            the paper's ViT-S runs with warm-up; 0.07 here).
        warmup_teacher_temp: teacher temperature at step 0 (DINO: 0.04).
        warmup_teacher_temp_epochs: length of the linear warm-up in epochs (DINO: 30); 0 uses
            ``teacher_temp`` from the start.
        center_momentum: EMA momentum of the centre (DINO: 0.9).
        freeze_last_layer_epochs: epochs with no gradient to the prototypes (DINO: 1; 0: never).
        momentum, final_momentum, momentum_epochs: teacher EMA schedule (DINO: 0.996 to 1 on
            a cosine over the whole run; see :class:`MomentumMethod`).
        probe_classes: classes of the online linear probe (on teacher features of view 0).
    """

    crop_names = ("global views", "local crops")
    freeze_argument = "freeze_last_layer_epochs"
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
        reject_step_arguments(kwargs, "warmup_teacher_temp_epochs", "freeze_last_layer_epochs")
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
        fix = "use DINO's student_temp=0.1, warmup_teacher_temp=0.04, teacher_temp=0.07."
        self.student_temp = check_positive_number(student_temp, "student_temp", fix)
        self.teacher_temp = check_positive_number(teacher_temp, "teacher_temp", fix)
        self.warmup_teacher_temp = check_positive_number(
            warmup_teacher_temp, "warmup_teacher_temp", fix
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
        self.check_augmenter_views()

    def build_heads(self, feature_shape):
        self.head.build(feature_shape)
        self.teacher_encoder = without_stochastic_depth(self.make_teacher(self.encoder))
        self.teacher_head = self.make_teacher(self.head)

    @property
    def export_encoder(self):
        """The backbone to evaluate and export: the teacher encoder (DINO, Sec. 3.1)."""
        return self.teacher_encoder

    @property
    def uses_epoch_schedules(self):
        warms_up = self.warmup_teacher_temp != self.teacher_temp
        return super().uses_epoch_schedules or (bool(self.warmup_teacher_temp_epochs) and warms_up)

    def teacher_temp_at(self, step):
        """Teacher temperature at optimizer step ``step``: the linear warm-up, then constant."""
        start, epochs = self.warmup_teacher_temp, self.warmup_teacher_temp_epochs
        return linear_warmup(self, step, start, self.teacher_temp, epochs)

    def compute_ssl_loss(self, views, training):
        self.check_crops(views)
        batch = tf.shape(views[0])[0]
        step = optimizer_step(self)
        features = self.encode_crops(views, training)
        freeze = self.prototypes_frozen_at(step)
        student = self.head(features, training=training, freeze_prototypes=freeze)
        large = tf.concat(views[:LARGE_CROPS], axis=0)
        teacher_features = self.teacher_encoder(large, training=training)
        teacher = self.teacher_head(teacher_features, training=training)
        student = tf.reshape(tf.cast(student, tf.float32), [len(views), batch, self.out_dim])
        teacher = tf.reshape(tf.cast(teacher, tf.float32), [LARGE_CROPS, batch, self.out_dim])
        teacher = tf.stop_gradient(teacher)
        temperature = self.teacher_temp_at(step)
        terms, center = dino_terms(teacher, student, self.center, self.student_temp, temperature)
        return terms, tf.cast(teacher_features[:batch], tf.float32), {"batch_center": center}

    def after_optimizer_step(self, batch_center):
        super().after_optimizer_step()  # EMA of the teacher encoder and head
        m = self.center_momentum
        self.center.assign(self.center * m + batch_center * (1.0 - m))

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
