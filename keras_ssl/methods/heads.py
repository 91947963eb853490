"""The online heads of the predictor methods with a momentum teacher (BYOL, MoCo v3): a
projector on the encoder, a predictor on the projector, and momentum copies of the encoder and
the projector (the predictor has none)."""

from keras_ssl.layers import MLPHead


def predictor_heads(
    method,
    projection_hidden_dims,
    projection_dim,
    prediction_hidden_dim,
    projection_output_batch_norm=False,
    prediction_output_batch_norm=False,
    use_predictor=True,
):
    """``(projector, predictor)``: :class:`~keras_ssl.layers.MLPHead` layers named
    ``"projector"`` and ``"predictor"``, BatchNorm synchronised as ``method``'s.

    Args:
        method: the :class:`~keras_ssl.methods.SSLMethod` (its resolved
            ``batch_norm_synchronized`` is used).
        projection_hidden_dims: hidden sizes of the projector.
        projection_dim: output size of the projector and the predictor.
        prediction_hidden_dim: size of the predictor's one hidden layer.
        projection_output_batch_norm: BatchNorm (no scale, no offset) on the projector's output.
        prediction_output_batch_norm: the same on the predictor's output.
        use_predictor: ``False`` returns ``None`` for the predictor.
    """
    projector = MLPHead(
        hidden_dims=projection_hidden_dims,
        output_dim=projection_dim,
        output_batch_norm=projection_output_batch_norm,
        synchronized=method.batch_norm_synchronized,
        name="projector",
    )
    if not use_predictor:
        return projector, None
    predictor = MLPHead(
        hidden_dims=(prediction_hidden_dim,),
        output_dim=projection_dim,
        output_batch_norm=prediction_output_batch_norm,
        synchronized=method.batch_norm_synchronized,
        name="predictor",
    )
    return projector, predictor


def build_predictor_heads(method, feature_shape):
    """Builds ``method.projector`` and ``method.predictor`` (unless ``None``) and returns the
    momentum copies ``(encoder copy, projector copy)``; call it from ``build_heads`` of a
    :class:`~keras_ssl.methods.momentum.MomentumMethod`."""
    method.projector.build(feature_shape)
    if method.predictor is not None:
        method.predictor.build((None, method.projection_dim))
    return method.make_teacher(method.encoder), method.make_teacher(method.projector)
