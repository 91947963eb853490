"""AdversarialMethod: the two-optimizer plumbing of methods that train a discriminator."""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.methods.base import SSLMethod


class AdversarialMethod(SSLMethod):
    """Base of methods with a ``discriminator`` trained by an optimizer of its own (BiGAN, the
    context encoder's adversarial loss).

    ``compile`` takes the players' ``optimizer`` (encoder, generator or decoder, online probe)
    and a ``discriminator_optimizer``; each is built on the variables it updates
    (:meth:`player_variables`), so its slots and what a ``.keras`` file or checkpoint holds for
    it match the variables its ``apply`` gets. Subclasses set ``self.discriminator`` in
    ``__init__``, return ``"discriminator_loss"`` among the terms of ``compute_ssl_loss`` and
    name the players' loss in :attr:`player_loss`.

    ``train_step`` takes one step of each optimizer. By default (:meth:`train_terms`) it is a
    simultaneous update, as in BiGAN: one forward pass, then the discriminator's step on
    ``"discriminator_loss"`` and the players' step on :attr:`player_loss`, both gradients taken
    at the weights of the forward pass. Methods that alternate (the context encoder: the
    players against the updated discriminator) override :meth:`train_terms`. Each loss is this
    replica's share scaled by ``1 / num_replicas``, so the gradients summed over replicas are
    those of one device on the global batch.
    """

    #: The term of ``compute_ssl_loss`` that the players minimise (with the probe's loss).
    player_loss = "loss"

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

    def train_step(self, data):
        views, labels = self.unpack_batch(data)
        players, _ = self.player_variables()
        # Persistent: update_discriminator takes the discriminator's gradient from it too.
        with tf.GradientTape(persistent=True) as tape:
            terms, features = self.train_terms(views, tape)
            total = terms[self.player_loss]
            if self.probe is not None and labels is not None:
                total = total + self._probe_update(features, labels)
            # Gradients are summed over replicas: scale so the sum is the global gradient.
            scaled = self.optimizer.scale_loss(total / distribute.num_replicas())
        gradients = tape.gradient(scaled, players)
        del tape
        apply_gradients(self.optimizer, gradients, players)
        self.after_optimizer_step()
        self._update_loss_trackers(terms)
        return self._step_logs()

    def train_terms(self, views, tape):
        """Returns a training step's ``(terms, features)`` (as ``compute_ssl_loss``), computed
        under ``tape``, and takes the discriminator's step (:meth:`update_discriminator`) where
        the method's schedule puts it.

        The default is the simultaneous update: ``compute_ssl_loss`` in training mode, then
        :meth:`update_discriminator` on its ``"discriminator_loss"``.
        """
        terms, features = self.compute_ssl_loss(views, training=True)
        self.update_discriminator(tape, terms["discriminator_loss"])
        return terms, features

    def update_discriminator(self, tape, loss):
        """Takes one step of ``discriminator_optimizer`` on ``loss`` and returns ``loss``.

        Args:
            tape: the step's persistent tape, which recorded ``loss`` (it stops recording
                during the update).
            loss: this replica's share of the discriminator's loss (a scalar).
        """
        scaled = self.discriminator_optimizer.scale_loss(loss / distribute.num_replicas())
        variables = self.discriminator.trainable_variables
        with tape.stop_recording():
            gradients = tape.gradient(scaled, variables)
            apply_gradients(self.discriminator_optimizer, gradients, variables)
        return loss

    def player_variables(self):
        """``(trainable variables of everything but the discriminator, the discriminator's)``."""
        discriminator = self.discriminator.trainable_variables
        ids = {id(v) for v in discriminator}
        return [v for v in self.trainable_variables if id(v) not in ids], discriminator


def apply_gradients(optimizer, gradients, variables):
    """``optimizer.apply`` on the variables that received a gradient (``None`` skipped)."""
    pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
    optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
