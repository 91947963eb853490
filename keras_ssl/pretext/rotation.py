"""Rotation labels (Gidaris et al. 2018, https://arxiv.org/abs/1803.07728): every image turned by
0, 90, 180 and 270 degrees, the label being the number of quarter turns."""

import tensorflow as tf

#: Number of rotation classes: 0, 90, 180 and 270 degrees.
NUM_ROTATIONS = 4


def _check_square_batch(images, name="images"):
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None or shape[1] != shape[2]:
        raise ValueError(
            f"`{name}` must be a batch of square images [batch, side, side, channels] (a quarter "
            f"turn keeps the shape only for squares); received shape {shape}. Fix: resize or "
            "centre-crop the images to a square size first."
        )


def rotate_images(images, quarter_turns):
    """Rotates each image of a batch counter-clockwise by its own number of quarter turns.

    Image ``i`` is turned by ``quarter_turns[i] * 90`` degrees counter-clockwise (as
    ``tf.image.rot90``); any integer works (taken modulo 4), so ``rotate_images(rotated,
    -labels)`` undoes ``rotate_images(images, labels)``. Vectorised: the four rotations of the
    batch are computed once and each image picks its own, so it runs under XLA and ``tf.data``.

    Args:
        images: ``[batch, side, side, channels]`` square images, any dtype.
        quarter_turns: integer tensor ``[batch]``.

    Returns:
        The rotated images, same shape and dtype as ``images``.
    """
    images = tf.convert_to_tensor(images)
    _check_square_batch(images)
    turns = tf.math.floormod(tf.cast(quarter_turns, tf.int32), NUM_ROTATIONS)
    turns = tf.reshape(turns, [-1])
    all_turns = tf.stack([tf.image.rot90(images, k) for k in range(NUM_ROTATIONS)], axis=1)
    return tf.gather(all_turns, turns, axis=1, batch_dims=1)


def rotation_batch(images):
    """All four rotations of every image, in one batch, with their labels.

    Gidaris et al. feed the 0, 90, 180 and 270 degree copies of each image together in the same
    mini-batch ("we found it beneficial ... to feed all four rotated copies of an image
    simultaneously"). Row ``k * batch + i`` of the output is image ``i`` turned ``k`` quarter
    turns counter-clockwise, with label ``k``; the first ``batch`` rows are the images as given.

    Args:
        images: ``[batch, side, side, channels]`` square images, any dtype.

    Returns:
        ``(rotated, labels)``: ``[4 * batch, side, side, channels]`` and int32 ``[4 * batch]``.
    """
    images = tf.convert_to_tensor(images)
    _check_square_batch(images)
    rotated = tf.concat([tf.image.rot90(images, k) for k in range(NUM_ROTATIONS)], axis=0)
    labels = tf.repeat(tf.range(NUM_ROTATIONS, dtype=tf.int32), tf.shape(images)[0])
    return rotated, labels
