"""AdversarialMethod: the two-optimizer plumbing of methods that train a discriminator."""

import keras

from keras_ssl.methods.base import SSLMethod


class AdversarialMethod(SSLMethod):
    """Base of methods with a ``discriminator`` trained by an optimizer of its own (BiGAN, the
    context encoder's adversarial loss).

    ``compile`` takes the players' ``optimizer`` (encoder, generator or decoder, online probe)
    and a ``discriminator_optimizer``; each is built on the variables it updates
    (:meth:`player_variables`), so its slots and what a ``.keras`` file or checkpoint holds for
    it match the variables its ``apply`` gets. Subclasses set ``self.discriminator`` in
    ``__init__`` and write their ``train_step`` with :func:`apply_gradients`.
    """

    def __init__(self, encoder, **kwargs):
        super().__init__(encoder, **kwargs)
        self.discriminator_optimizer = None

    def default_optimizer(self):
        """The players' optimizer when ``compile`` gets none (the paper's)."""
        return "rmsprop"

    def compile(self, optimizer=None, discriminator_optimizer=None, **kwargs):
        """Configures training with one optimizer per player.

        Args:
            optimizer: optimizer of everything but the discriminator; ``None`` is the paper's
                (:meth:`default_optimizer`).
            discriminator_optimizer: optimizer of the discriminator; ``None`` is a fresh
                optimizer with ``optimizer``'s configuration and its own slots (so
                config-driven training, which passes one optimizer, works unchanged).
            **kwargs: the other ``keras.Model.compile`` arguments (``jit_compile``,
                ``steps_per_execution``, ...).
        """
        optimizer = self.default_optimizer() if optimizer is None else optimizer
        super().compile(optimizer=optimizer, **kwargs)
        if discriminator_optimizer is None:
            main = self.optimizer
            if isinstance(main, keras.optimizers.LossScaleOptimizer):
                main = main.inner_optimizer
            config = dict(main.get_config(), name=f"discriminator_{main.name}")
            discriminator_optimizer = type(main).from_config(config)
        else:
            discriminator_optimizer = keras.optimizers.get(discriminator_optimizer)
        # Its configuration (not the object): compile_from_config rebuilds it on load.
        self._discriminator_optimizer_config = keras.saving.serialize_keras_object(
            discriminator_optimizer
        )
        if self.dtype_policy.name == "mixed_float16" and not isinstance(
            discriminator_optimizer, keras.optimizers.LossScaleOptimizer
        ):
            discriminator_optimizer = keras.optimizers.LossScaleOptimizer(
                discriminator_optimizer, name="discriminator_loss_scale_optimizer"
            )
        # A model attribute: `.keras` files and checkpoints save and restore its slots.
        self.discriminator_optimizer = discriminator_optimizer

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            config["discriminator_optimizer"] = self._discriminator_optimizer_config
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self._build_optimizers()

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        self._build_optimizers()

    def _build_optimizers(self):
        players, discriminator = self.player_variables()
        with self.distribute_strategy.scope():
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(players)
            optimizer = self.discriminator_optimizer
            if optimizer is not None and not optimizer.built:
                optimizer.build(discriminator)

    def player_variables(self):
        """``(trainable variables of everything but the discriminator, the discriminator's)``."""
        discriminator = self.discriminator.trainable_variables
        ids = {id(v) for v in discriminator}
        return [v for v in self.trainable_variables if id(v) not in ids], discriminator


def apply_gradients(optimizer, gradients, variables):
    """``optimizer.apply`` on the variables that received a gradient (``None`` skipped)."""
    pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
    optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
