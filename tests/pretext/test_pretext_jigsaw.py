import itertools

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.pretext import jigsaw


def naive_greedy(num_permutations, num_tiles, seed, criterion):
    """Algorithm 1 of Noroozi & Favaro written plainly: add the candidate farthest from the set."""
    candidates = list(itertools.permutations(range(num_tiles)))
    chosen = [candidates[int(np.random.default_rng(seed).integers(len(candidates)))]]
    while len(chosen) < num_permutations:
        best, best_score = None, None
        for candidate in candidates:  # in lexicographic order: the first best wins ties
            if candidate in chosen:
                continue
            distances = [sum(a != b for a, b in zip(candidate, c)) for c in chosen]
            score = sum(distances) if criterion == "sum" else (min(distances), sum(distances))
            if best_score is None or score > best_score:
                best, best_score = candidate, score
        chosen.append(best)
    return np.array(chosen)


@pytest.mark.parametrize("criterion", ["max_min", "sum"])
def test_permutation_set_is_the_greedy_selection_of_algorithm_1(criterion):
    for num_permutations, seed in ((6, 0), (10, 3)):
        permutations, distance = jigsaw.permutation_set(
            num_permutations, num_tiles=4, seed=seed, criterion=criterion
        )
        np.testing.assert_array_equal(
            permutations, naive_greedy(num_permutations, 4, seed, criterion)
        )
        assert distance == jigsaw.minimal_hamming_distance(permutations)


def test_hand_checked_three_tile_set():
    # 3 tiles, seed 0 starts at (2, 1, 0); the farthest permutations differ in all 3 places.
    permutations, distance = jigsaw.permutation_set(3, num_tiles=3, seed=0)
    np.testing.assert_array_equal(permutations, [[2, 1, 0], [0, 2, 1], [1, 0, 2]])
    assert distance == 3
    assert jigsaw.minimal_hamming_distance([[0, 1, 2], [0, 2, 1], [1, 0, 2]]) == 2


def test_default_set_has_the_requested_minimal_hamming_distance():
    permutations, distance = jigsaw.permutation_set(100, min_hamming=6, seed=0)
    assert permutations.shape == (100, 9) and permutations.dtype == np.int32
    assert (np.sort(permutations, axis=1) == np.arange(9)).all()  # every row a permutation
    assert len({tuple(p) for p in permutations}) == 100
    distances = jigsaw.hamming_distances(permutations)
    assert distance == 6 and distances[~np.eye(100, dtype=bool)].min() == 6
    # The paper's summed-distance criterion keeps a large mean but a minimal distance of 2.
    summed, summed_distance = jigsaw.permutation_set(100, criterion="sum")
    assert summed_distance == 2
    assert jigsaw.hamming_distances(summed).sum() / (100 * 99) > 8.0
    # Fixed by the seed.
    again, _ = jigsaw.permutation_set(100, seed=0)
    other, _ = jigsaw.permutation_set(100, seed=1)
    np.testing.assert_array_equal(again, permutations)
    assert not np.array_equal(other, permutations)
    with pytest.raises(ValueError, match=r"minimal Hamming distance of 6; received min_hamming=7"):
        jigsaw.permutation_set(100, min_hamming=7)


@pytest.mark.parametrize("count", [1, 0, 363000, 2.5])
def test_too_few_or_too_many_permutations_raise(count):
    with pytest.raises(ValueError, match=r"`num_permutations` must be an integer in \[2, 362880\]"):
        jigsaw.permutation_set(count)


def test_bad_permutation_arguments_raise():
    with pytest.raises(ValueError, match="criterion.*received 'mean'"):
        jigsaw.permutation_set(10, criterion="mean")
    with pytest.raises(
        ValueError, match=r"`num_tiles` must be an integer in \[2, 9\]; received 10"
    ):
        jigsaw.permutation_set(10, num_tiles=10)
    with pytest.raises(ValueError, match=r"in \[2, 24\]; received 30\. .*24 \(4!\) orders.*=24 "):
        jigsaw.permutation_set(30, num_tiles=4)


def test_tiles_reassembled_by_the_inverse_permutation_restore_the_image():
    rng = np.random.default_rng(0)
    images = rng.random((6, 13, 14, 2)).astype(np.float32)
    permutations, _ = jigsaw.permutation_set(10, seed=0)
    # Tiles as large as their cells: no jitter, the 3x3 grid of 4-px cells is the centred crop.
    shuffled, labels = jigsaw.make_jigsaw(images, [1, 2], permutations, (4, 4), (4, 4))
    assert shuffled.shape == (6, 9, 4, 4, 2) and labels.dtype == tf.int32
    restored = jigsaw.assemble_tiles(jigsaw.unshuffle_tiles(shuffled, permutations, labels))
    np.testing.assert_array_equal(restored, images[:, 0:12, 1:13])  # centred: (13-12)//2, 2//2
    # Position i of a puzzle holds tile permutations[label][i].
    tiles = jigsaw.cut_tiles(images, np.zeros((6, 9, 2), np.int32), (4, 4), (4, 4))
    for b in range(6):
        order = permutations[int(labels[b])]
        np.testing.assert_array_equal(shuffled[b], np.asarray(tiles[b])[order])
    assert len(set(np.asarray(labels).tolist())) > 1  # each image its own permutation


def test_tiles_are_cut_at_their_cell_plus_offset():
    rng = np.random.default_rng(1)
    images = rng.random((2, 28, 28, 1)).astype(np.float32)
    offsets = rng.integers(0, 3, (2, 9, 2)).astype(np.int32)
    tiles = np.asarray(jigsaw.cut_tiles(images, offsets, (7, 7), (9, 9)))
    for b in range(2):
        for j in range(9):
            top = 0 + 9 * (j // 3) + offsets[b, j, 0]  # (28 - 27) // 2 = 0
            left = 0 + 9 * (j % 3) + offsets[b, j, 1]
            np.testing.assert_array_equal(tiles[b, j], images[b, top : top + 7, left : left + 7])


def test_draws_are_stateless_per_image_and_compile_with_xla():
    labels, offsets = jigsaw.sample_jigsaw(64, [3, 4], 100, (2, 1))
    assert 0 <= np.min(labels) and np.max(labels) < 100 and len(np.unique(labels)) > 20
    assert offsets.shape == (64, 9, 2)
    assert set(np.unique(offsets[..., 0])) == {0, 1, 2} and set(np.unique(offsets[..., 1])) == {
        0,
        1,
    }
    again = jigsaw.sample_jigsaw(64, [3, 4], 100, (2, 1))
    np.testing.assert_array_equal(again[0], labels)
    np.testing.assert_array_equal(again[1], offsets)
    assert not np.array_equal(jigsaw.sample_jigsaw(64, [3, 5], 100, (2, 1))[0], labels)
    images = np.random.default_rng(2).random((4, 28, 28, 1)).astype(np.float32)
    permutations, _ = jigsaw.permutation_set(10)

    def puzzle(images, seed):
        return jigsaw.make_jigsaw(images, seed, permutations, (7, 7), (9, 9))

    compiled = tf.function(puzzle, jit_compile=True)(images, tf.constant([5, 6]))
    plain = puzzle(images, tf.constant([5, 6]))
    np.testing.assert_array_equal(compiled[0], plain[0])
    np.testing.assert_array_equal(compiled[1], plain[1])


def test_default_geometry_scales_the_paper():
    assert jigsaw.default_tile_geometry((225, 225)) == ((64, 64), (75, 75))
    assert jigsaw.default_tile_geometry((28, 28)) == ((7, 7), (9, 9))
    assert jigsaw.default_tile_geometry((32, 32)) == ((8, 8), (10, 10))


def test_grid_larger_than_the_image_or_tile_larger_than_cell_raise():
    images = np.zeros((1, 28, 28, 1), np.float32)
    with pytest.raises(ValueError, match=r"grid of cells of height 10 needs 30 pixels.*have 28"):
        jigsaw.make_jigsaw(images, [0, 0], [[0, 1, 2, 3, 4, 5, 6, 7, 8]] * 2, (7, 7), (10, 9))
    with pytest.raises(ValueError, match=r"tile width 8 > cell width 7.*Fix"):
        jigsaw.jigsaw_geometry((28, 28), (7, 8), (7, 7))
    with pytest.raises(ValueError, match=r"images \[batch, height, width, channels\].*received"):
        jigsaw.cut_tiles(np.zeros((28, 28, 1)), np.zeros((1, 9, 2), np.int32), (7, 7), (9, 9))


def test_standardize_patches_gives_each_tile_zero_mean_and_unit_variance():
    rng = np.random.default_rng(7)
    tiles = rng.normal(3.0, 2.0, size=(2, 9, 4, 4, 3)).astype(np.float32)
    tiles[0, 0] = 0.5  # a flat tile stays near zero
    standardized = np.asarray(jigsaw.standardize_patches(tf.constant(tiles)))
    mean = tiles.mean(axis=(2, 3, 4), keepdims=True)
    variance = tiles.var(axis=(2, 3, 4), keepdims=True)
    np.testing.assert_allclose(
        standardized, (tiles - mean) / np.sqrt(variance + 1e-3), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(standardized[0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(standardized[1].std(axis=(1, 2, 3)), 1.0, rtol=1e-3)
