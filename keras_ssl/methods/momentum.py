"""``MomentumMethod``: the base of methods with an exponential-moving-average teacher.

BYOL's target network, MoCo's key encoder and DINO's teacher are copies of online networks
whose weights follow the online weights by EMA, ``t <- tau * t + (1 - tau) * o``, after every
optimizer step, with ``tau`` rising from ``momentum`` to ``final_momentum`` on a cosine schedule
over the whole training run, ``epochs * steps_per_epoch`` optimizer steps of ``fit`` (BYOL, Grill
et al. 2020, arXiv:2006.07733, Sec. 3.2; DINO), or over ``momentum_epochs`` epochs. The steps
come from the run's plan (:meth:`SSLMethod.plan_schedules`), so the schedule ends after the same
number of epochs on a data set of any size.

BatchNorm: the teacher runs in training mode and keeps its own moving statistics, updated by
its own forward passes (as MoCo's key encoder and BYOL's target network do); only the online
network's *trainable* weights (kernels, biases, BatchNorm scale and offset) are averaged into
the teacher. Teacher variables are marked non-trainable, so they get no gradients and no
optimizer slots, but the teacher's layers stay in training mode (BatchNorm uses batch
statistics).
"""

import math

import keras
import tensorflow as tf

from keras_ssl.methods.base import SSLMethod, check_epochs
from keras_ssl.validation import check_in_range


def copy_network(network):
    """A structural copy of ``network`` (a built model or layer) holding the same weights.

    Functional and sequential models are rebuilt with ``keras.models.clone_model``; other
    layers from their config and build config. The weights are then copied, so the copy starts
    equal to the original and shares no variable with it.
    """
    if not network.built:
        raise ValueError(
            f"Only built networks can be copied; received {network.name!r}, which is not built. "
            "Fix: build it first (layer.build(input_shape)) or call it once."
        )
    if isinstance(network, keras.Model) and getattr(network, "_is_graph_network", False):
        copy = keras.models.clone_model(network)
    else:
        copy = type(network).from_config(network.get_config())
        copy.build_from_config(network.get_build_config())
    copy.set_weights(network.get_weights())
    return copy


def ema_update(online, teacher, tau):
    """``t <- tau * t + (1 - tau) * o`` for every trainable weight ``o`` of ``online``.

    Args:
        online: the online network (model or layer).
        teacher: its copy (same structure, same weight order).
        tau: momentum in ``[0, 1]`` (a float or scalar tensor).
    """
    online_weights, teacher_weights = online.weights, teacher.weights
    if len(online_weights) != len(teacher_weights):
        raise ValueError(
            f"The teacher must mirror the online network; received {len(teacher_weights)} "
            f"teacher weights for {len(online_weights)} online weights. Fix: build the teacher "
            "with keras_ssl.methods.momentum.copy_network(online)."
        )
    for source, target in zip(online_weights, teacher_weights):
        if source.trainable:
            tau_cast = tf.cast(tau, target.dtype)
            target.assign(tau_cast * target + (1.0 - tau_cast) * tf.cast(source, target.dtype))


def cosine_momentum(step, base, final, total_steps):
    """BYOL's schedule: ``final - (final - base) * (cos(pi * step / total_steps) + 1) / 2``.

    ``step`` counts from 0; past ``total_steps`` (a number or a scalar tensor; below 1 counts
    as 1) the momentum stays at ``final``. With ``total_steps=None`` the momentum is constant
    at ``base``.
    """
    if total_steps is None:
        return tf.constant(base, tf.float32)
    total = tf.maximum(tf.cast(total_steps, tf.float32), 1.0)
    progress = tf.minimum(tf.cast(step, tf.float32) / total, 1.0)
    return final - (final - base) * (tf.cos(math.pi * progress) + 1.0) / 2.0


@keras.saving.register_keras_serializable(package="keras_ssl")
class MomentumMethod(SSLMethod):
    """Base class of methods with EMA teachers (see the module docstring).

    Subclasses create their online layers in ``__init__`` and, in ``build_heads`` (after
    building them), call :meth:`make_teacher` for each online network that needs a teacher,
    assigning the copy to an attribute; ``compute_ssl_loss`` uses the copies.
    After every optimizer step all registered teachers are updated by :func:`ema_update`
    with ``tau = momentum_at(step)``.

    Args:
        encoder, augmenter, probe_classes: see :class:`SSLMethod`.
        momentum: base EMA momentum ``tau`` (BYOL: 0.996; MoCo: 0.999).
        final_momentum: momentum reached at the end of the schedule (BYOL, DINO: 1.0); ``None``
            (or equal to ``momentum``) keeps ``tau = momentum`` throughout (MoCo).
        momentum_epochs: length of the cosine schedule in epochs; ``None`` spans the whole run
            (``epochs`` of ``fit``), as BYOL and DINO do.
    """

    def __init__(
        self,
        encoder,
        augmenter=None,
        momentum=0.996,
        final_momentum=1.0,
        momentum_epochs=None,
        probe_classes=None,
        **kwargs,
    ):
        if "momentum_steps" in kwargs:
            raise ValueError(
                f"`momentum_steps` was replaced by `momentum_epochs`; received momentum_steps="
                f"{kwargs['momentum_steps']!r}. Fix: drop it (the cosine then spans the whole "
                "run of fit) or pass momentum_epochs=<epochs>; final_momentum=None keeps the "
                "momentum constant."
            )
        super().__init__(encoder, augmenter=augmenter, probe_classes=probe_classes, **kwargs)
        fix = (
            "use e.g. momentum=0.996, final_momentum=1.0 (BYOL) or momentum=0.999, "
            "final_momentum=None (MoCo)."
        )
        check_in_range(momentum, "momentum", 0, 1, fix)
        if final_momentum is not None:
            check_in_range(final_momentum, "final_momentum", 0, 1, fix)
        self.momentum_epochs = check_epochs(momentum_epochs, "momentum_epochs", allow_none=True)
        if self.momentum_epochs == 0:
            raise ValueError(
                "`momentum_epochs` must be positive or None; received 0. Fix: pass None for "
                "the whole run, or final_momentum=None for a constant momentum."
            )
        self.momentum = float(momentum)
        self.final_momentum = None if final_momentum is None else float(final_momentum)
        # Untracked: both networks are tracked through the attributes they are assigned to.
        object.__setattr__(self, "_teacher_pairs", [])

    def make_teacher(self, online):
        """Returns a frozen copy of ``online`` that follows it by EMA after every step.

        Call it from ``build_heads`` (Keras adds no state after ``build``) and assign the
        result to an attribute (``self.target_encoder = self.make_teacher(self.encoder)``) so
        that Keras tracks, saves and restores it like any other sub-layer.
        """
        teacher = copy_network(online)
        for weight in teacher.weights:
            weight.trainable = False
        self._teacher_pairs.append((online, teacher))
        return teacher

    @property
    def momentum_is_constant(self):
        return self.final_momentum is None or self.final_momentum == self.momentum

    @property
    def uses_epoch_schedules(self):
        return super().uses_epoch_schedules or not self.momentum_is_constant

    def momentum_at(self, step):
        """The EMA momentum used after optimizer step ``step`` (counted from 0), in the run's
        plan (:meth:`SSLMethod.plan_schedules`)."""
        if self.momentum_is_constant:
            return tf.constant(self.momentum, tf.float32)
        total = self.epochs_to_steps(self.momentum_epochs)
        return cosine_momentum(step, self.momentum, self.final_momentum, total)

    def after_optimizer_step(self):
        # The optimizer has just finished step `iterations - 1`.
        tau = self.momentum_at(self.optimizer.iterations - 1)
        for online, teacher in self._teacher_pairs:
            ema_update(online, teacher, tau)

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "final_momentum": self.final_momentum,
            "momentum_epochs": self.momentum_epochs,
        }
