"""Multi-crop views of several sizes through one encoder (DINO, SwAV)."""


def encode_at_any_size(network, images, training):
    """Runs a functional ``network`` on ``images`` that may differ from its declared input size.

    Functional models check inputs against their ``keras.Input`` shape; running the model's
    graph (``network.call``) on another size skips that check while every layer still checks
    its own input. Convolutional encoders and keras_ssl's ViT (which resamples its position
    embeddings) run on any size they support.
    """
    if tuple(images.shape[1:]) == tuple(network.input_shape[1:]):
        return network(images, training=training)
    return network.call(images, training=training)


def size_groups(views):
    """Consecutive views of the same size, as lists (each group is encoded in one pass)."""
    groups = []
    for view in views:
        if groups and tuple(groups[-1][-1].shape[1:]) == tuple(view.shape[1:]):
            groups[-1].append(view)
        else:
            groups.append([view])
    return groups
