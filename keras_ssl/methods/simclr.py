"""SimCLR: contrastive learning of two augmented views with in-batch negatives."""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.layers import MLPHead
from keras_ssl.losses import nt_xent
from keras_ssl.methods.base import SSLMethod


@keras.saving.register_keras_serializable(package="keras_ssl")
class SimCLR(SSLMethod):
    """SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
    Representations", https://arxiv.org/abs/2002.05709).

    Two augmented views of every image go through the encoder f (in one forward pass over the
    concatenated views, so BatchNorm sees both) and the MLP projection head g; NT-Xent makes
    each view pick its partner among the other 2N - 1 views of the global batch. Under a
    ``tf.distribute`` strategy the projections are gathered from all replicas, so the negatives
    are global and the loss and gradients equal those of one device on the global batch.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``keras_ssl.augment.presets.simclr``.
        projection_hidden_dim: hidden size of g; ``None`` uses the feature size ``D`` as in
            the paper.
        projection_dim: output size of g (paper: 128).
        temperature: NT-Xent temperature (paper: 0.5 for CIFAR-10 at batch 512-1024, 0.1 for
            ImageNet at batch 4096; values 0.1-0.5 work, lower needs larger batches).
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    def __init__(
        self,
        encoder,
        augmenter=None,
        projection_hidden_dim=None,
        projection_dim=128,
        temperature=0.5,
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(
            encoder,
            augmenter=augmenter,
            probe_classes=probe_classes,
            synchronized_bn=synchronized_bn,
            **kwargs,
        )
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(
                f"`temperature` must be a positive number; received {temperature!r}. "
                "Fix: use 0.1-0.5 (SimCLR's default is 0.5)."
            )
        self.projection_hidden_dim = projection_hidden_dim
        self.projection_dim = projection_dim
        self.temperature = temperature
        self.projector = MLPHead(
            hidden_dims=(projection_hidden_dim or self.feature_dim,),
            output_dim=projection_dim,
            synchronized=self.batch_norm_synchronized,
            name="projector",
        )

    def build_heads(self, feature_shape):
        self.projector.build(feature_shape)

    def compute_ssl_loss(self, views, training):
        if len(views) != 2:
            raise ValueError(
                f"SimCLR uses exactly 2 views per image; received {len(views)}. Fix: use an "
                "augmenter with two views (keras_ssl.augment.presets.simclr)."
            )
        batch = tf.shape(views[0])[0]
        features = self.encoder(tf.concat(views, axis=0), training=training)
        projections = self.projector(features, training=training)
        z_a, z_b = tf.split(projections, 2, axis=0)
        losses = nt_xent(
            z_a,
            z_b,
            temperature=self.temperature,
            all_z_a=distribute.gather(z_a),
            all_z_b=distribute.gather(z_b),
            offset=distribute.replica_offset(batch),
        )
        return {"loss": tf.reduce_mean(losses)}, features[:batch]

    def get_config(self):
        return {
            **super().get_config(),
            "projection_hidden_dim": self.projection_hidden_dim,
            "projection_dim": self.projection_dim,
            "temperature": self.temperature,
        }
