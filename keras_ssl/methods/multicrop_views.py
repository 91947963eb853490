"""Multi-crop views of several sizes through one encoder (DINO, SwAV): the mixin of the methods
trained on them, and the helpers it uses."""

import re

import keras
import tensorflow as tf

from keras_ssl.methods.epoch_schedules import in_first_epochs
from keras_ssl.methods.short_runs import SHORT_RUN_STEPS


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


class MultiCropMethod:
    """Mixin of the multi-crop methods (DINO, SwAV); list it before the method's base class.

    Views 0 and 1 are the large crops, of the encoder's input size; views 2, 3, ... are small
    crops (``keras_ssl.augment.multicrop``, the default augmenter). The small crops run through
    the encoder at their own, smaller size, one pass per size as in DINO and SwAV
    (:meth:`encode_crops`): ResNets pool over any size and the ViT resamples its position
    embeddings, so a 12 px crop of a 28 px image costs about (12/28)^2 = 18% of a large crop.
    Encoders that only take their input size are detected at construction
    (:meth:`check_augmenter_views`): build the augmenter with ``local_size`` equal to the global
    size instead, which resizes the small crops to the encoder input (the same views at several
    times the cost: 2 + 6 crops then take 8 full passes instead of about 3).

    Both methods score the crops against prototypes that get no gradient during the first
    epochs (:meth:`prototypes_frozen_at`), a schedule in epochs.

    A subclass names its crops in :attr:`crop_names` and its freeze argument in
    :attr:`freeze_argument`, calls :meth:`check_augmenter_views` at the end of ``__init__`` and
    :meth:`check_crops` first in ``compute_ssl_loss``.
    """

    short_run_steps = SHORT_RUN_STEPS  # measured: see keras_ssl.methods.short_runs

    default_preset = "multicrop"

    #: What the method calls its large and its small crops, in messages.
    crop_names = ("large crops", "small crops")

    #: The argument (and attribute) holding the epochs during which the prototypes are frozen.
    freeze_argument = "freeze_prototypes_epochs"

    @property
    def uses_epoch_schedules(self):
        return super().uses_epoch_schedules or bool(getattr(self, self.freeze_argument))

    def prototypes_frozen_at(self, step):
        """Whether the prototypes get no gradient at optimizer step ``step``: a bool tensor for
        the first :attr:`freeze_argument` epochs of the plan; ``None`` when they never freeze."""
        return in_first_epochs(self, step, getattr(self, self.freeze_argument))

    def prototypes_at(self, prototypes, step):
        """``prototypes`` (a tensor) as optimizer step ``step`` uses them: with the gradient
        stopped while they are frozen (:meth:`prototypes_frozen_at`)."""
        frozen = self.prototypes_frozen_at(step)
        if frozen is None:
            return prototypes
        return tf.where(frozen, tf.stop_gradient(prototypes), prototypes)

    def view_shape(self, index):
        """Large crops (views 0, 1) must match the encoder input; small ones may be any size."""
        if index < LARGE_CROPS:
            return self.image_shape
        return (None, None, self.image_shape[-1])

    def check_augmenter_views(self):
        """Checks the augmenter's view sizes against the encoder (:func:`check_multicrop_views`)."""
        large, small = self.crop_names
        check_multicrop_views(
            type(self).__name__, self.augmenter, self.encoder, self.image_shape, large, small
        )

    def check_crops(self, views):
        """Raises a ``ValueError`` unless ``views`` starts with the :data:`LARGE_CROPS` crops."""
        if len(views) < LARGE_CROPS:
            large, small = self.crop_names
            raise ValueError(
                f"{type(self).__name__} needs {LARGE_CROPS} {large} (then any number of "
                f"{small}); received {len(views)} view(s). Fix: use "
                "keras_ssl.augment.multicrop.multicrop(...)."
            )

    def encode_crops(self, views, training):
        """Encoder features ``[V * n, D]`` of all ``V`` crops, crop after crop: the large crops in
        one pass, then each run of small crops of one size in one pass."""
        features = [self.encoder(tf.concat(views[:LARGE_CROPS], axis=0), training=training)]
        for group in size_groups(views[LARGE_CROPS:]):
            features.append(encode_at_any_size(self.encoder, tf.concat(group, 0), training))
        return tf.concat(features, axis=0)
