"""Random patch projection (Chen, Xie & He 2021, "An Empirical Study of Training Self-Supervised
Vision Transformers", https://arxiv.org/abs/2104.02057, Sec. 4.2): a ViT trains more stably when
its patch projection stays at its random initialisation.

Freezing sets the patch embedding's ``projection`` convolution non-trainable (class token and
position embeddings stay trainable); a momentum copy of the encoder keeps it equal, since only
trainable weights are averaged. Encoders cloned for fine-tuning (``keras_ssl.evaluation``) get a
trainable projection again, as the paper fine-tunes it. Only ``keras_ssl.backbones.ViT``'s
``PatchEmbedding`` is recognised: for other ViTs (``backbones.from_keras_model``) set the patch
layer's ``trainable = False`` before building the method.
"""

from keras_ssl.backbones.vit import PatchEmbedding


def patch_embeddings(encoder):
    """The ``keras_ssl.backbones.vit.PatchEmbedding`` layers inside ``encoder`` (a ViT has one)."""
    layers = encoder._flatten_layers(include_self=False, recursive=True)
    return [layer for layer in layers if isinstance(layer, PatchEmbedding)]


def check_freeze_patch_projection(freeze):
    """Raises a ``ValueError`` unless ``freeze`` is ``None``, ``True`` or ``False``."""
    if freeze not in (None, True, False):
        raise ValueError(
            f"`freeze_patch_projection` must be None, True or False; received {freeze!r}. Fix: "
            "None freezes the patch projection of a ViT encoder (the paper) and ignores other "
            "encoders."
        )


def random_patch_projection(encoder, freeze):
    """Freezes the patch projection of ``encoder`` as ``freeze`` says; returns whether it did.

    Args:
        encoder: the method's encoder.
        freeze: ``None`` (auto: freeze whenever ``encoder`` has a ``PatchEmbedding``, else
            nothing), ``True`` (freeze; a ``ValueError`` without a ``PatchEmbedding``) or
            ``False`` (train the projection).
    """
    check_freeze_patch_projection(freeze)
    patches = patch_embeddings(encoder)
    if freeze and not patches:
        raise ValueError(
            f"`freeze_patch_projection=True` needs an encoder with a patch embedding "
            f"(keras_ssl.backbones.vit.PatchEmbedding); received {encoder.name!r}, which "
            "has none. Fix: pass freeze_patch_projection=None (freezes it only for ViTs) "
            "or False, or use a keras_ssl.backbones.ViT encoder."
        )
    frozen = bool(patches) if freeze is None else freeze
    if frozen:
        for layer in patches:
            layer.projection.trainable = False
    return frozen
