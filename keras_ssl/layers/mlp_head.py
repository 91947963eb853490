"""MLP projection / prediction head shared by the SSL methods."""

import keras

from keras_ssl.layers.batch_norm import BatchNormalization


@keras.saving.register_keras_serializable(package="keras_ssl")
class MLPHead(keras.layers.Layer):
    """``Dense -> BatchNorm -> ReLU`` per hidden layer, then a ``Dense`` output.

    This is SimCLR's projection head g(.) (Chen et al. 2020, arXiv:2002.05709, Sec. 2.1) and the
    projector/predictor of BYOL-style methods.

    Args:
        hidden_dims: sizes of the hidden layers (``()`` gives a linear head).
        output_dim: size of the output.
        batch_norm: put BatchNorm after every hidden ``Dense`` (the hidden ``Dense`` then has no
            bias, which BatchNorm would cancel).
        output_batch_norm: put a BatchNorm without learned scale/shift after the output
            (SimCLR v2's projector, Barlow Twins' normaliser).
        synchronized: synchronise BatchNorm statistics across replicas (global BatchNorm, as SimCLR
            uses on TPUs); identical to plain BatchNorm on one device.
    """

    def __init__(
        self,
        hidden_dims=(2048,),
        output_dim=128,
        batch_norm=True,
        output_batch_norm=False,
        synchronized=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        hidden_dims = tuple(int(d) for d in hidden_dims)
        if any(d < 1 for d in hidden_dims) or int(output_dim) < 1:
            raise ValueError(
                f"Head sizes must be positive; received hidden_dims={hidden_dims}, "
                f"output_dim={output_dim}. Fix: pass positive integers, e.g. "
                "hidden_dims=(2048,), output_dim=128."
            )
        self.hidden_dims = hidden_dims
        self.output_dim = int(output_dim)
        self.batch_norm = batch_norm
        self.output_batch_norm = output_batch_norm
        self.synchronized = synchronized
        self.hidden_layers = []
        for index, dim in enumerate(hidden_dims):
            self.hidden_layers.append(
                keras.layers.Dense(dim, use_bias=not batch_norm, name=f"dense_{index}")
            )
            if batch_norm:
                self.hidden_layers.append(
                    BatchNormalization(synchronized=synchronized, name=f"bn_{index}")
                )
            self.hidden_layers.append(keras.layers.ReLU(name=f"relu_{index}"))
        self.output_layer = keras.layers.Dense(
            self.output_dim, use_bias=not output_batch_norm, name="output"
        )
        self.output_norm = (
            BatchNormalization(
                center=False, scale=False, synchronized=synchronized, name="output_bn"
            )
            if output_batch_norm
            else None
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.output_layer.build(shape)
        shape = self.output_layer.compute_output_shape(shape)
        if self.output_norm is not None:
            self.output_norm.build(shape)

    def call(self, inputs, training=False):
        x = inputs
        for layer in self.hidden_layers:
            x = layer(x, training=training)
        x = self.output_layer(x)
        if self.output_norm is not None:
            x = self.output_norm(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dims": self.hidden_dims,
            "output_dim": self.output_dim,
            "batch_norm": self.batch_norm,
            "output_batch_norm": self.output_batch_norm,
            "synchronized": self.synchronized,
        }
