"""Jigsaw puzzles (Noroozi & Favaro 2016, https://arxiv.org/abs/1603.09246): 3x3 tiles with gaps,
shuffled by one of a fixed set of permutations chosen for large Hamming distances.

The permutation set is computed once in NumPy (:func:`permutation_set`); the tiles are cut,
shuffled and labelled with batched TensorFlow ops that compile under XLA
(:func:`sample_jigsaw`, :func:`cut_tiles`, :func:`shuffle_tiles`, :func:`make_jigsaw`).
Convention: with permutation ``p``, position ``i`` of a shuffled puzzle holds tile ``p[i]`` (tiles
numbered in reading order), so ``tiles = shuffled[:, argsort(p)]`` undoes the shuffle.
"""

import functools
import itertools
import math

import numpy as np
import tensorflow as tf

from keras_ssl.layers.patch_grid import _pair
from keras_ssl.validation import check_int

#: Tiles per side of the puzzle grid (the paper's 3x3 puzzle).
GRID = 3


@functools.lru_cache(maxsize=2)
def _all_permutations(num_tiles):
    return np.array(list(itertools.permutations(range(num_tiles))), np.int8)


@functools.lru_cache(maxsize=2)
def _match_masks(num_tiles):
    # masks[position, value] marks the permutations holding ``value`` at ``position``.
    every = _all_permutations(num_tiles)
    return every.T[:, None, :] == np.arange(num_tiles, dtype=np.int8)[None, :, None]


def hamming_distances(permutations):
    """Pairwise Hamming distances (number of positions that differ) of a set of permutations.

    Args:
        permutations: int array ``[P, n]``.

    Returns:
        int array ``[P, P]``.
    """
    permutations = np.asarray(permutations)
    return np.sum(permutations[:, None, :] != permutations[None, :, :], axis=-1)


def minimal_hamming_distance(permutations):
    """The smallest Hamming distance between two different members of a permutation set."""
    distances = hamming_distances(permutations).astype(np.int64)
    np.fill_diagonal(distances, np.iinfo(np.int64).max)
    return int(distances.min())


@functools.lru_cache(maxsize=8)
def _greedy_permutations(num_permutations, num_tiles, seed, criterion):
    every = _all_permutations(num_tiles)
    masks = _match_masks(num_tiles)
    minimum = np.full(len(every), num_tiles + 1, np.int64)
    total = np.zeros(len(every), np.int64)
    chosen = [int(np.random.default_rng(seed).integers(len(every)))]
    for _ in range(num_permutations - 1):
        last = every[chosen[-1]]
        matches = np.zeros(len(every), np.int64)
        for position, value in enumerate(last):
            matches += masks[position, value]
        distance = num_tiles - matches
        minimum = np.minimum(minimum, distance)
        total += distance
        if criterion == "sum":  # the paper's Algorithm 1: argmax of the summed distances
            score = np.where(minimum > 0, total, -1)
        else:  # farthest point: largest minimal distance, ties by the summed distance
            score = minimum * (num_tiles * num_permutations + 1) + total
        chosen.append(int(np.argmax(score)))
    return every[chosen].astype(np.int32)


def permutation_set(
    num_permutations=100, num_tiles=GRID * GRID, seed=0, criterion="max_min", min_hamming=None
):
    """Greedy maximal-Hamming-distance permutation set (Noroozi & Favaro 2016, Algorithm 1).

    Starting from a permutation drawn uniformly with ``seed``, the greedy loop adds, one at a
    time, the permutation of ``range(num_tiles)`` farthest from the ones chosen so far:

    - ``criterion="max_min"`` (default): the one whose smallest Hamming distance to the chosen
      set is largest (farthest-point selection), ties broken by the summed distance, then by
      the lexicographically first. This maximises the set's minimal distance greedily
      (100 permutations of 9 tiles: minimal distance 6).
    - ``criterion="sum"``: exactly the paper's Algorithm 1 (``j = argmax_k 1^T D``, the summed
      distance to the chosen set), which maximises the average distance but leaves the minimal
      distance at 2 for 100 permutations of 9 tiles.

    The result depends only on the arguments (cached per process).

    Args:
        num_permutations: size ``P`` of the set (the paper's best: 1000; at least 2).
        num_tiles: tiles per puzzle (9 for 3x3).
        seed: seed of the first permutation.
        criterion: ``"max_min"`` or ``"sum"``.
        min_hamming: the minimal Hamming distance the set must reach, or ``None``.

    Returns:
        ``(permutations, min_distance)``: int32 array ``[P, num_tiles]`` and the minimal pairwise
        Hamming distance of the set.

    Raises:
        ValueError: for fewer than 2 or more than ``num_tiles!`` permutations, or an unknown
            criterion, or when the set does not reach ``min_hamming``.
    """
    num_tiles = check_int(num_tiles, "num_tiles", 2, "use 9 for a 3x3 puzzle.", maximum=9)
    available = math.factorial(num_tiles)
    num_permutations = check_int(
        num_permutations,
        "num_permutations",
        2,
        f"pass at least 2 (a classification task needs at least two classes) and at most the "
        f"{available} ({num_tiles}!) orders of {num_tiles} tiles, e.g. num_permutations="
        f"{min(100, available)} (the paper's best is 1000 for 9 tiles).",
        maximum=available,
    )
    if criterion not in ("max_min", "sum"):
        raise ValueError(
            f"`criterion` must be 'max_min' or 'sum'; received {criterion!r}. Fix: use "
            "'max_min' (largest minimal distance) or 'sum' (the paper's Algorithm 1)."
        )
    permutations = _greedy_permutations(num_permutations, num_tiles, int(seed), criterion)
    distance = minimal_hamming_distance(permutations)
    if min_hamming is not None and distance < min_hamming:
        raise ValueError(
            f"The greedy set of {num_permutations} permutations of {num_tiles} tiles "
            f"(criterion={criterion!r}, seed={seed}) has a minimal Hamming distance of {distance}; "
            f"received min_hamming={min_hamming}, expected at most {distance}. Fix: ask for fewer "
            "permutations, use criterion='max_min', or lower min_hamming."
        )
    return permutations.copy(), distance


def jigsaw_geometry(image_size, tile_size, cell_size):
    """Where the 3x3 puzzle lies in an image.

    The puzzle is a 3x3 grid of cells of ``cell_size``, centred in the image; each tile is a
    ``tile_size`` crop at a random position inside its cell (the paper: 64-px tiles in 75-px
    cells of a 225-px crop), so neighbouring tiles are separated by a random gap of
    ``0 .. 2 * (cell - tile)`` pixels and edges do not line up.

    Args:
        image_size: ``(height, width)``.
        tile_size: ``(height, width)`` of a tile.
        cell_size: ``(height, width)`` of a cell.

    Returns:
        ``(top, left)`` of the grid.

    Raises:
        ValueError: when a tile is larger than its cell or the grid larger than the image.
    """
    origin = []
    for axis, name in enumerate(("height", "width")):
        size, tile, cell = image_size[axis], tile_size[axis], cell_size[axis]
        if tile > cell:
            raise ValueError(
                f"Jigsaw tiles must fit in their cells; received tile {name} {tile} > cell "
                f"{name} {cell} (tile_size={tuple(tile_size)}, cell_size={tuple(cell_size)}). "
                f"Fix: use a tile size of at most {cell} (e.g. about 85% of the cell)."
            )
        if GRID * cell > size:
            raise ValueError(
                f"The 3x3 jigsaw grid of cells of {name} {cell} needs {GRID * cell} pixels but "
                f"the images have {size} (received cell_size={tuple(cell_size)} for images "
                f"{tuple(image_size)}); expected 3 * cell <= image. Fix: use cell_size <= "
                f"{size // GRID}."
            )
        origin.append((size - GRID * cell) // 2)
    return tuple(origin)


def sample_jigsaw(batch_size, seed, num_permutations, max_offset):
    """Each image's own random puzzle: a permutation index and the tiles' positions in the cells.

    Stateless (philox): the same ``seed`` gives the same draws on every device and under XLA.

    Args:
        batch_size: number of images (int or scalar tensor).
        seed: int tensor ``[2]``.
        num_permutations: ``P``; labels are uniform in ``[0, P)``.
        max_offset: ``(height, width)``: ``cell - tile``; offsets are uniform in
            ``[0, max_offset]``.

    Returns:
        ``(labels, offsets)``: int32 ``[batch]`` and int32 ``[batch, 9, 2]``.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    labels = tf.random.stateless_uniform(
        [batch_size], seeds[0], 0, num_permutations, dtype=tf.int32, alg="philox"
    )
    offsets = [
        tf.random.stateless_uniform(
            [batch_size, GRID * GRID], seeds[1 + axis], 0, limit + 1, dtype=tf.int32, alg="philox"
        )
        for axis, limit in enumerate(max_offset)
    ]
    return labels, tf.stack(offsets, axis=-1)


def cut_tiles(images, offsets, tile_size, cell_size):
    """Cuts the 9 tiles of each image in reading order.

    Tile ``j`` (cell row ``j // 3``, column ``j % 3``) of image ``b`` is ``images[b, y : y + th,
    x : x + tw]`` with ``(y, x) = origin + (row, col) * cell_size + offsets[b, j]`` and
    ``origin`` from :func:`jigsaw_geometry`. Two batched gathers; runs under XLA.

    Args:
        images: ``[batch, H, W, C]`` with static ``H`` and ``W``, any dtype.
        offsets: int ``[batch, 9, 2]``: each tile's position inside its cell.
        tile_size: ``(height, width)`` of a tile.
        cell_size: ``(height, width)`` of a cell.

    Returns:
        ``[batch, 9, tile_height, tile_width, C]``.
    """
    images = tf.convert_to_tensor(images)
    _check_images(images)
    origin = jigsaw_geometry(images.shape[1:3], tile_size, cell_size)
    cells = np.array([divmod(j, GRID) for j in range(GRID * GRID)], np.int32)  # [9, 2]
    corners = origin + cells * np.array(cell_size, np.int32) + tf.cast(offsets, tf.int32)
    rows = corners[..., 0:1] + tf.range(tile_size[0])  # [b, 9, th]
    cols = corners[..., 1:2] + tf.range(tile_size[1])  # [b, 9, tw]
    batch = tf.shape(images)[0]
    flat_rows = tf.reshape(rows, [batch, -1])
    strips = tf.gather(images, flat_rows, axis=1, batch_dims=1)  # [b, 9 * th, W, C]
    strips = tf.reshape(strips, [batch * GRID * GRID, tile_size[0], *images.shape[2:]])
    flat_cols = tf.reshape(cols, [batch * GRID * GRID, tile_size[1]])
    tiles = tf.gather(strips, flat_cols, axis=2, batch_dims=1)  # [b * 9, th, tw, C]
    return tf.reshape(tiles, [batch, GRID * GRID, *tile_size, images.shape[3]])


def shuffle_tiles(tiles, permutations, labels):
    """Puts tile ``permutations[labels[b], i]`` at position ``i`` of puzzle ``b``.

    Args:
        tiles: ``[batch, 9, th, tw, C]`` in reading order.
        permutations: int ``[P, 9]``.
        labels: int ``[batch]`` indices into ``permutations``.

    Returns:
        The shuffled tiles, same shape.
    """
    order = tf.gather(tf.constant(np.asarray(permutations), tf.int32), labels)
    return tf.gather(tiles, order, axis=1, batch_dims=1)


def unshuffle_tiles(shuffled, permutations, labels):
    """Undoes :func:`shuffle_tiles` with the inverse permutations: tiles back in reading order."""
    inverse = np.argsort(np.asarray(permutations), axis=1).astype(np.int32)
    return shuffle_tiles(shuffled, inverse, labels)


def assemble_tiles(tiles):
    """Lays 9 tiles in reading order out as a 3x3 image ``[batch, 3 * th, 3 * tw, C]``."""
    tiles = tf.convert_to_tensor(tiles)
    batch = tf.shape(tiles)[0]
    tile_h, tile_w, channels = tiles.shape[2:]
    grid = tf.reshape(tiles, [batch, GRID, GRID, tile_h, tile_w, channels])
    grid = tf.transpose(grid, [0, 1, 3, 2, 4, 5])
    return tf.reshape(grid, [batch, GRID * tile_h, GRID * tile_w, channels])


def standardize_patches(patches, epsilon=1e-3):
    """Each patch to zero mean and unit standard deviation over its pixels and channels.

    ``(x - mean) / sqrt(variance + epsilon)``; ``epsilon`` keeps flat patches near zero (the
    paper normalises every tile's mean and standard deviation, so that low-level statistics
    do not give neighbouring tiles away). Works on ``[..., height, width, channels]``.
    """
    mean, variance = tf.nn.moments(patches, axes=[-3, -2, -1], keepdims=True)
    return (patches - mean) * tf.math.rsqrt(variance + epsilon)


def make_jigsaw(images, seed, permutations, tile_size, cell_size):
    """Random jigsaw puzzles of a batch: shuffled tiles and the permutation index of each.

    Args:
        images: ``[batch, H, W, C]``.
        seed: int tensor ``[2]``; every image gets its own draws.
        permutations: int ``[P, 9]`` (:func:`permutation_set`).
        tile_size: ``(height, width)`` of a tile.
        cell_size: ``(height, width)`` of a cell.

    Returns:
        ``(shuffled, labels)``: ``[batch, 9, th, tw, C]`` and int32 ``[batch]``.
    """
    images = tf.convert_to_tensor(images)
    _check_images(images)
    jigsaw_geometry(images.shape[1:3], tile_size, cell_size)
    max_offset = tuple(c - t for c, t in zip(cell_size, tile_size))
    labels, offsets = sample_jigsaw(tf.shape(images)[0], seed, len(permutations), max_offset)
    tiles = cut_tiles(images, offsets, tile_size, cell_size)
    return shuffle_tiles(tiles, permutations, labels), labels


def default_tile_geometry(image_size):
    """The paper's geometry scaled to ``image_size``: cells of a third of the side and tiles of
    ``64 / 75`` of the cell (28 px: 9-px cells, 7-px tiles; 32 px: 10 and 8; 225 px: 75, 64).

    Returns:
        ``(tile_size, cell_size)`` pairs.
    """
    cell = tuple(max(1, side // GRID) for side in image_size)
    tile = tuple(max(1, c * 64 // 75) for c in cell)
    return tile, cell


def pair(value, name):
    """``value`` as ``(height, width)`` of positive ints, or a ``ValueError``."""
    return _pair(value, name, f"pass e.g. {name}=7")


def _check_images(images):
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise ValueError(
            f"Jigsaw puzzles take images [batch, height, width, channels] of a known size; "
            f"received shape {shape}. Fix: batch the images and give them a fixed size."
        )
