"""Multi-crop views of several sizes through one encoder (DINO, SwAV)."""

import re

import keras


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


#: The number of large ("global") crops that lead a multi-crop augmenter's views.
LARGE_CROPS = 2


def check_multicrop_views(method, augmenter, encoder, image_shape, large, small):
    """Checks a multi-crop augmenter's view sizes against the encoder, when it can tell them.

    The first :data:`LARGE_CROPS` views must have the encoder's input shape; every other size
    must be one the encoder accepts through :func:`encode_at_any_size`. An augmenter that does
    not report its output shapes is left to the checks on the views that arrive.

    Args:
        method: the method's name, for the messages.
        augmenter: the view generator.
        encoder: the functional encoder.
        image_shape: ``(H, W, C)`` of the encoder's input.
        large: what the method calls its large crops (e.g. ``"global views"``).
        small: what it calls the other crops (e.g. ``"local crops"``).
    """
    try:
        shapes = augmenter.compute_output_shape((None, *image_shape))
    except (NotImplementedError, TypeError, ValueError, AttributeError):
        return  # a foreign augmenter: views are checked when they arrive
    if not isinstance(shapes, (tuple, list)) or not all(
        isinstance(s, (tuple, list)) for s in shapes
    ):
        return
    if len(shapes) < LARGE_CROPS:
        raise ValueError(
            f"{method} needs an augmenter with {LARGE_CROPS} {large} (then {small}); received "
            f"one with {len(shapes)} view(s). Fix: use keras_ssl.augment.multicrop.multicrop()."
        )
    for index, shape in enumerate(shapes[:LARGE_CROPS]):
        if tuple(shape[1:]) != tuple(image_shape):
            raise ValueError(
                f"{method}'s {large} must have the encoder's input shape {image_shape}; the "
                f"augmenter's view {index} has shape {tuple(shape[1:])}. Fix: build the augmenter "
                "with global_size=None (the image size) or the encoder with that input shape."
            )
    checked = {tuple(image_shape)}
    for shape in shapes[LARGE_CROPS:]:
        shape = tuple(shape[1:])
        if shape in checked:
            continue
        checked.add(shape)
        try:
            encode_at_any_size(encoder, keras.KerasTensor((None, *shape)), False)
        except ValueError as error:
            detail = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split())
            detail = detail.split(" Arguments received")[0]
            raise ValueError(
                f"{method} encodes {small} at their own size, but encoder {encoder.name!r} "
                f"cannot take {shape} images ({detail[:400]}). Fix: use {small} it accepts (a "
                f"multiple of a ViT's patch size), or multicrop(..., local_size=<the image size>) "
                f"to resize the {small} to the encoder input (any encoder, more compute)."
            ) from error
