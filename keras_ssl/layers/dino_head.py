"""DINO's projection head: MLP, bottleneck, L2 normalisation and weight-normalised prototypes."""

import keras
import tensorflow as tf

from keras_ssl.layers.batch_norm import BatchNormalization
from keras_ssl.validation import check_int


@keras.saving.register_keras_serializable(package="keras_ssl")
class DINOHead(keras.layers.Layer):
    """The head of DINO (Caron et al. 2021, https://arxiv.org/abs/2104.14294, Sec. 3.1).

    ``num_layers`` Dense layers (``hidden_dim`` wide, GELU after each hidden layer, optional
    BatchNorm) end in a ``bottleneck_dim`` projection; it is L2-normalised and fed to a
    weight-normalised linear layer without bias (Salimans and Kingma 2016) with ``out_dim``
    outputs: output ``k`` is ``g_k * <z, v_k> / ||v_k||``. DINO fixes the magnitudes ``g`` at 1
    (``norm_last_layer=True``), so the outputs are cosine similarities between the normalised
    bottleneck and ``out_dim`` learned prototype directions ``v_k``; with
    ``norm_last_layer=False`` the ``g_k`` are learned (initialised to 1).

    Dense kernels start from a truncated normal with standard deviation 0.02 and zero biases
    (DINO's init); the prototype directions start uniform in ``+-1/sqrt(bottleneck_dim)``
    (PyTorch's ``Linear`` default, which DINO keeps for that layer; only directions matter).

    Args:
        out_dim: number of prototypes ``K`` (DINO: 65536).
        hidden_dim: width of the hidden layers (DINO: 2048).
        bottleneck_dim: width of the bottleneck before normalisation (DINO: 256).
        num_layers: Dense layers before the normalisation, at least 1 (DINO: 3).
        batch_norm: BatchNorm after each hidden Dense (DINO's ``use_bn_in_head``, off by default).
        norm_last_layer: fix the prototype magnitudes ``g`` at 1 (DINO's default; False learns
            them, which DINO finds can help ViT-S but makes training less stable).
        synchronized: synchronise the hidden BatchNorms across replicas.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(
        self,
        out_dim=65536,
        hidden_dim=2048,
        bottleneck_dim=256,
        num_layers=3,
        batch_norm=False,
        norm_last_layer=True,
        synchronized=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        fix = (
            "use e.g. out_dim=65536, hidden_dim=2048, bottleneck_dim=256, num_layers=3 (DINO), "
            "or smaller sizes for small datasets."
        )
        sizes = {"out_dim": out_dim, "hidden_dim": hidden_dim, "bottleneck_dim": bottleneck_dim}
        for name, value in {**sizes, "num_layers": num_layers}.items():
            check_int(value, name, 1, fix)
        self.out_dim = out_dim
        self.hidden_dim = hidden_dim
        self.bottleneck_dim = bottleneck_dim
        self.num_layers = num_layers
        self.batch_norm = batch_norm
        self.norm_last_layer = norm_last_layer
        self.synchronized = synchronized
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        policy = self.dtype_policy  # sublayers compute like the head (DINO: float32)
        self.mlp_layers = []
        for index in range(num_layers - 1):
            self.mlp_layers.append(
                keras.layers.Dense(
                    hidden_dim, kernel_initializer=init, dtype=policy, name=f"dense_{index}"
                )
            )
            if batch_norm:
                self.mlp_layers.append(
                    BatchNormalization(synchronized=synchronized, dtype=policy, name=f"bn_{index}")
                )
            self.mlp_layers.append(
                keras.layers.Activation("gelu", dtype=policy, name=f"gelu_{index}")
            )
        self.bottleneck = keras.layers.Dense(
            bottleneck_dim, kernel_initializer=init, dtype=policy, name="bottleneck"
        )
        self.prototype_scale = None

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.mlp_layers:
            layer.build(shape)
            shape = tuple(layer.compute_output_shape(shape))
        self.bottleneck.build(shape)
        limit = 1.0 / self.bottleneck_dim**0.5
        self.prototypes = self.add_weight(
            shape=(self.bottleneck_dim, self.out_dim),
            initializer=keras.initializers.RandomUniform(-limit, limit),
            name="prototypes",
        )
        if not self.norm_last_layer:
            self.prototype_scale = self.add_weight(
                shape=(self.out_dim,), initializer="ones", name="prototype_scale"
            )

    def normalized_prototypes(self):
        """The prototype matrix ``[bottleneck_dim, out_dim]``: unit columns times ``g``."""
        kernel = tf.math.l2_normalize(tf.convert_to_tensor(self.prototypes), axis=0)
        if self.prototype_scale is not None:
            kernel = kernel * self.prototype_scale
        return kernel

    def call(self, inputs, training=False, freeze_prototypes=None):
        """Maps features ``[batch, D]`` to prototype scores ``[batch, out_dim]``.

        Args:
            inputs: features ``[batch, D]``.
            training: run BatchNorm (if any) in training mode.
            freeze_prototypes: optional boolean scalar (tensor); when True no gradient reaches
                the prototype layer (DINO keeps it fixed during the first epoch).
        """
        x = inputs
        for layer in self.mlp_layers:
            x = layer(x, training=training)
        # Unit vectors in float32: a float16 norm of small features underflows to 0.
        x = tf.math.l2_normalize(tf.cast(self.bottleneck(x), tf.float32), axis=-1)
        kernel = self.normalized_prototypes()
        if freeze_prototypes is not None:
            kernel = tf.where(freeze_prototypes, tf.stop_gradient(kernel), kernel)
        return tf.cast(tf.matmul(x, tf.cast(kernel, tf.float32)), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.out_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "out_dim": self.out_dim,
            "hidden_dim": self.hidden_dim,
            "bottleneck_dim": self.bottleneck_dim,
            "num_layers": self.num_layers,
            "batch_norm": self.batch_norm,
            "norm_last_layer": self.norm_last_layer,
            "synchronized": self.synchronized,
        }
