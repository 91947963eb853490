"""LARS: layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_ssl")
class LARS(keras.optimizers.Optimizer):
    """SGD with momentum whose step for each weight tensor is scaled by its trust ratio.

    For a weight tensor ``w`` with gradient ``g`` (You et al. 2017, Algorithm 1, in the form
    SimCLR and BYOL use):

    - ``g <- g + weight_decay * w`` (L2 decay, coupled: it enters the trust ratio);
    - ``trust = eta * ||w|| / ||g||`` (1 when either norm is 0);
    - ``v <- momentum * v + learning_rate * trust * g``;
    - ``w <- w - v`` (or ``w - (momentum * v + learning_rate * trust * g)`` with Nesterov).

    Biases and BatchNorm scales/offsets (every rank-1 weight, and any weight whose path
    contains a string of ``exclude``) get neither weight decay nor the trust ratio: they take
    plain momentum-SGD steps, as in SimCLR and BYOL.

    Args:
        learning_rate: float or schedule (SimCLR: 0.3 x batch / 256, or 0.075 x sqrt(batch)).
        momentum: heavy-ball momentum.
        weight_decay: coupled L2 weight decay (SimCLR: 1e-6, BYOL: 1.5e-6).
        trust_coefficient: ``eta`` (0.001).
        nesterov: use Nesterov momentum.
        exclude: substrings of variable paths excluded from decay and adaptation, in
            addition to rank-1 variables (e.g. ``("probe",)`` for an online probe head).
        name, **kwargs: passed to ``keras.optimizers.Optimizer`` (clipnorm, EMA, loss
            scaling ...); its decoupled ``weight_decay`` is not used.

    References:
        You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks",
        https://arxiv.org/abs/1708.03888
    """

    def __init__(
        self,
        learning_rate=0.1,
        momentum=0.9,
        weight_decay=0.0,
        trust_coefficient=0.001,
        nesterov=False,
        exclude=(),
        name="lars",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        checks = (
            ("momentum", momentum, 0.0, 1.0),
            ("weight_decay", weight_decay, 0.0, None),
            ("trust_coefficient", trust_coefficient, 0.0, None),
        )
        for arg, value, low, high in checks:
            if not isinstance(value, (int, float)) or value < low or (high and value > high):
                raise ValueError(
                    f"LARS `{arg}` must be a number >= {low}{f' and <= {high}' if high else ''}; "
                    f"received {value!r}. Fix: e.g. momentum=0.9, weight_decay=1e-6, "
                    "trust_coefficient=0.001."
                )
        self.momentum = float(momentum)
        self.lars_weight_decay = float(weight_decay)
        self.trust_coefficient = float(trust_coefficient)
        self.nesterov = nesterov
        self.exclude = tuple(exclude)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")

    def adapts(self, variable):
        """Whether ``variable`` gets weight decay and the trust ratio."""
        path = getattr(variable, "path", variable.name)
        return len(variable.shape) > 1 and not any(part in path for part in self.exclude)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.adapts(variable):
            gradient = gradient + self.lars_weight_decay * variable
            weight_norm = ops.sqrt(ops.sum(ops.square(variable)))
            gradient_norm = ops.sqrt(ops.sum(ops.square(gradient)))
            ratio = self.trust_coefficient * weight_norm / ops.maximum(gradient_norm, 1e-30)
            usable = ops.logical_and(weight_norm > 0, gradient_norm > 0)
            learning_rate = learning_rate * ops.where(usable, ratio, ops.ones_like(ratio))
        step = learning_rate * gradient
        velocity = self.momentums[self._get_variable_index(variable)]
        self.assign(velocity, self.momentum * velocity + step)
        if self.nesterov:
            self.assign_sub(variable, self.momentum * velocity + step)
        else:
            self.assign_sub(variable, velocity)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "weight_decay": self.lars_weight_decay,
                "trust_coefficient": self.trust_coefficient,
                "nesterov": self.nesterov,
                "exclude": list(self.exclude),
            }
        )
        return config
