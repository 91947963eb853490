import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.losses import redundancy
from keras_ssl.testing import run_loss_test, two_replica_strategy


def barlow_twins_reference(z_a, z_b, redundancy_weight=5e-3, epsilon=1e-5):
    """Zbontar et al. 2021, Eq. 1-2, entry by entry, with BatchNorm-style standardisation."""
    n, d = z_a.shape
    standard = []
    for z in (z_a.astype(np.float64), z_b.astype(np.float64)):
        mean = z.sum(0) / n
        variance = ((z - mean) ** 2).sum(0) / n
        standard.append((z - mean) / np.sqrt(variance + epsilon))
    c = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            c[i, j] = sum(standard[0][b, i] * standard[1][b, j] for b in range(n)) / n
    invariance = sum((1 - c[i, i]) ** 2 for i in range(d))
    redundancy = sum(c[i, j] ** 2 for i in range(d) for j in range(d) if i != j)
    return invariance + redundancy_weight * redundancy


def vicreg_reference(
    z_a,
    z_b,
    invariance_weight=25.0,
    variance_weight=25.0,
    covariance_weight=1.0,
    gamma=1.0,
    epsilon=1e-4,
):
    """Bardes et al. 2022, Eq. 1-6, scaled as the official code (see vicreg_loss's docstring)."""
    n, d = z_a.shape
    z_a, z_b = z_a.astype(np.float64), z_b.astype(np.float64)
    invariance = sum(np.sum((z_a[i] - z_b[i]) ** 2) for i in range(n)) / (n * d)
    variance, covariance = 0.0, 0.0
    for z in (z_a, z_b):
        centred = z - z.mean(0)
        cov = centred.T @ centred / (n - 1)
        variance += np.mean([max(0.0, gamma - np.sqrt(cov[j, j] + epsilon)) for j in range(d)]) / 2
        covariance += sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / d
    return (
        invariance_weight * invariance + variance_weight * variance + covariance_weight * covariance
    )


def _random_pair(seed, n=6, d=4):
    rng = np.random.default_rng(seed)
    z_a = rng.normal(size=(n, d)).astype(np.float32)
    # Correlated second view, so the diagonal of C is far from 0 and from 1.
    z_b = (0.7 * z_a + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
    return z_a, z_b


# ------------------------------------------------------------------------- Barlow Twins
def test_barlow_twins_battery():
    z_a, z_b = _random_pair(0)
    run_loss_test(
        redundancy.barlow_twins_loss,
        {"z_a": z_a, "z_b": z_b, "redundancy_weight": 0.3},
        reference_fn=barlow_twins_reference,
        swap=("z_a", "z_b"),
        loss_object=redundancy.BarlowTwinsLoss(redundancy_weight=0.3),
    )


def test_barlow_twins_hand_computed_two_images():
    # Two images: every dimension standardises to (-1, +1) or (+1, -1) (variance 1 before
    # epsilon). z_a dims: (1, 3) -> (-1, 1), (2, 0) -> (1, -1); z_b dims: (0, 2) -> (-1, 1),
    # (5, 3) -> (1, -1). C = a^T b / 2 = [[1, -1], [-1, 1]] / (1 + eps): the diagonal is (nearly)
    # perfect, the two off-diagonal entries are -1, so the loss is (nearly) 2 * lambda.
    z_a = np.array([[1.0, 2.0], [3.0, 0.0]], np.float32)
    z_b = np.array([[0.0, 5.0], [2.0, 3.0]], np.float32)
    epsilon = 1e-5
    scale = 1 / (1 + epsilon)
    expected = 2 * (1 - scale) ** 2 + 0.5 * 2 * scale**2
    run_loss_test(
        redundancy.barlow_twins_loss,
        {"z_a": z_a, "z_b": z_b, "redundancy_weight": 0.5, "epsilon": epsilon},
        expected=expected,
    )
    terms = redundancy.barlow_twins_terms(z_a, z_b, 0.5, epsilon)
    np.testing.assert_allclose(terms["on_diagonal"], 2 * (1 - scale) ** 2, atol=1e-9)
    np.testing.assert_allclose(terms["off_diagonal"], 2 * scale**2, rtol=1e-6, atol=1e-6)


def test_barlow_twins_closed_form_identical_decorrelated_views():
    # Columns of a 4x4 Hadamard matrix without its constant column: mean 0, variance 1 and
    # mutually orthogonal. Identical views give C = I / (1 + eps) and a loss of ~0.
    z = np.array([[1, 1, 1], [-1, 1, -1], [1, -1, -1], [-1, -1, 1]], np.float32)
    run_loss_test(
        redundancy.barlow_twins_loss,
        {"z_a": z, "z_b": z, "redundancy_weight": 5e-3},
        expected=0.0,
        atol=1e-8,
    )
    # Scaled and shifted per dimension: standardisation removes it, the loss stays ~0.
    shifted = z * np.array([3.0, 0.5, 10.0], np.float32) + np.array([1.0, -2.0, 7.0], np.float32)
    np.testing.assert_allclose(redundancy.barlow_twins_loss(z, shifted), 0.0, atol=1e-8)


def test_barlow_twins_is_invariant_to_per_dimension_affine_maps():
    z_a, z_b = _random_pair(1, n=10, d=5)
    scale = np.array([0.2, 3.0, 1.0, 7.0, 0.9], np.float32)
    shift = np.array([5.0, -1.0, 0.0, 2.0, -8.0], np.float32)
    # A tiny epsilon: the default 1e-5 is not negligible next to variances of about 0.2^2.
    np.testing.assert_allclose(
        redundancy.barlow_twins_loss(z_a, z_b, epsilon=1e-10),
        redundancy.barlow_twins_loss(z_a * scale + shift, z_b * scale[::-1] - shift, epsilon=1e-10),
        rtol=1e-5,
        atol=1e-5,
    )


def test_barlow_twins_weight_zero_is_the_on_diagonal_term():
    z_a, z_b = _random_pair(2)
    terms = redundancy.barlow_twins_terms(z_a, z_b, redundancy_weight=0.0)
    assert float(terms["off_diagonal"]) > 0
    np.testing.assert_allclose(terms["loss"], terms["on_diagonal"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        terms["loss"],
        barlow_twins_reference(z_a, z_b, redundancy_weight=0.0),
        rtol=1e-5,
        atol=1e-5,
    )


# --------------------------------------------------------------------------------- VICReg
def test_vicreg_battery():
    z_a, z_b = _random_pair(3, n=7, d=5)
    inputs = {"z_a": 0.3 * z_a, "z_b": 0.3 * z_b, "invariance_weight": 10.0, "gamma": 1.5}
    run_loss_test(
        redundancy.vicreg_loss,
        inputs,
        reference_fn=vicreg_reference,
        swap=("z_a", "z_b"),
        loss_object=redundancy.VICRegLoss(invariance_weight=10.0, gamma=1.5),
    )
    # The scaled-down embeddings keep every term active (std < gamma in some dimensions).
    terms = redundancy.vicreg_terms(**inputs)
    assert all(float(terms[key]) > 0.01 for key in ("invariance", "variance", "covariance"))


def test_vicreg_hand_computed_two_images():
    # z_a: both dimensions (0, 0.4) -> variance (0.2^2 * 2) / (2 - 1) = 0.08, covariance 0.08.
    # z_b: dimensions (0.4, 0) and (0, 0.4) -> variance 0.08, covariance -0.08.
    # With epsilon = 0.01: std = sqrt(0.09) = 0.3, hinge 1 - 0.3 = 0.7 in every dimension, so
    # variance = (0.7 + 0.7) / 2 = 0.7; covariance = 2 * 0.08^2 / 2 per view, 0.0128 for both;
    # invariance = (0.4^2 + 0.4^2) / (2 * 2) = 0.08. Loss = 25 * 0.08 + 25 * 0.7 + 0.0128.
    z_a = np.array([[0.0, 0.0], [0.4, 0.4]], np.float32)
    z_b = np.array([[0.4, 0.0], [0.0, 0.4]], np.float32)
    run_loss_test(
        redundancy.vicreg_loss,
        {"z_a": z_a, "z_b": z_b, "epsilon": 0.01},
        expected=19.5128,
        reference_fn=vicreg_reference,
    )
    terms = redundancy.vicreg_terms(z_a, z_b, epsilon=0.01)
    np.testing.assert_allclose(
        [terms["invariance"], terms["variance"], terms["covariance"]],
        [0.08, 0.7, 0.0128],
        rtol=1e-5,
        atol=1e-5,
    )


def test_vicreg_closed_forms():
    z_a, _ = _random_pair(4)
    # Identical views: no invariance term.
    terms = redundancy.vicreg_terms(z_a, z_a)
    assert float(terms["invariance"]) == 0.0
    # Constant embeddings (collapse): std = sqrt(epsilon) in every dimension, so the variance
    # term is gamma - sqrt(epsilon) (per dimension, averaged) and the covariance term is 0.
    constant = np.full((5, 3), 0.25, np.float32)
    terms = redundancy.vicreg_terms(constant, constant, gamma=2.0, epsilon=1e-4)
    np.testing.assert_allclose(terms["variance"], 2.0 - 0.01, rtol=1e-6, atol=1e-6)
    assert float(terms["covariance"]) == 0.0 and float(terms["invariance"]) == 0.0
    np.testing.assert_allclose(terms["loss"], 25.0 * 1.99, rtol=1e-6, atol=1e-6)
    # Spread above gamma in every dimension turns the hinge off.
    wide = 10.0 * np.array([[1, 1], [-1, 1], [1, -1], [-1, -1]], np.float32)
    assert float(redundancy.vicreg_terms(wide, wide)["variance"]) == 0.0


# ------------------------------------------------------------------- both, distributed
@pytest.mark.parametrize("terms_fn", [redundancy.barlow_twins_terms, redundancy.vicreg_terms])
def test_two_replicas_on_halves_equal_one_device_on_the_batch(terms_fn):
    """Global statistics: the same terms on every replica, and (with the base class's division
    by the number of replicas) the single-device gradient on every row of the batch."""
    z_a, z_b = _random_pair(5, n=8, d=4)
    with tf.GradientTape() as tape:
        inputs = [tf.constant(z_a), tf.constant(z_b)]
        tape.watch(inputs)
        expected = terms_fn(*inputs)
    expected_gradients = tape.gradient(expected["loss"], inputs)

    def replica_step(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            terms = terms_fn(a, b)
            scaled = terms["loss"] / distribute.num_replicas()
        return terms, tape.gradient(scaled, [a, b])

    strategy = two_replica_strategy()
    dataset = tf.data.Dataset.from_tensor_slices((z_a, z_b)).batch(8)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
    terms, gradients = strategy.run(tf.function(replica_step), args=batch)
    for key, value in expected.items():
        for replica_value in strategy.experimental_local_results(terms[key]):
            np.testing.assert_allclose(replica_value, value, rtol=1e-6, err_msg=key, atol=1e-6)
    for index in range(2):
        halves = strategy.experimental_local_results(gradients[index])
        np.testing.assert_allclose(
            np.concatenate(halves), expected_gradients[index], rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize(
    "terms_fn, statistic_terms",
    [
        (redundancy.barlow_twins_terms, ("on_diagonal", "off_diagonal")),
        (redundancy.vicreg_terms, ("variance", "covariance")),
    ],
)
def test_statistics_are_global_not_means_of_replica_statistics(terms_fn, statistic_terms):
    # The second half of the batch is shifted: each half alone has a small spread, the global
    # batch a large one, so per-replica statistics (or their mean) would give other terms.
    z_a, z_b = _random_pair(6, n=8, d=3)
    z_a[4:] += 2.0
    z_b[4:] += 2.0
    full = terms_fn(z_a, z_b)
    halves = [terms_fn(z_a[s], z_b[s]) for s in (slice(0, 4), slice(4, 8))]
    for key in statistic_terms:
        local_mean = np.mean([float(half[key]) for half in halves])
        assert abs(float(full[key]) - local_mean) > 0.3 * abs(local_mean), key

    strategy = two_replica_strategy()
    dataset = tf.data.Dataset.from_tensor_slices((z_a, z_b)).batch(8)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
    terms = strategy.run(tf.function(terms_fn), args=batch)
    for key, value in full.items():
        for replica_value in strategy.experimental_local_results(terms[key]):
            np.testing.assert_allclose(replica_value, value, rtol=1e-6, err_msg=key, atol=1e-6)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("loss_fn", [redundancy.barlow_twins_loss, redundancy.vicreg_loss])
@pytest.mark.parametrize(
    "z_a, z_b, match",
    [
        (np.ones((1, 4)), np.ones((1, 4)), r"needs at least 2 examples; received a \(global\) "),
        (np.ones((3, 4, 1)), np.ones((3, 4, 1)), r"rank 2 \[batch, dim\]; received shapes"),
        (np.ones((3, 4)), np.ones((3, 5)), r"same shape .* received \(3, 4\) and \(3, 5\)"),
        (np.ones((3, 4)), np.ones((2, 4)), r"same shape .* received \(3, 4\) and \(2, 4\)"),
    ],
)
def test_bad_projections(loss_fn, z_a, z_b, match):
    with pytest.raises(ValueError, match=match):
        loss_fn(z_a, z_b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"redundancy_weight": -5e-3}, "`redundancy_weight` must be a number >= 0; received"),
        ({"redundancy_weight": None}, "`redundancy_weight` must be a number >= 0; received None"),
        ({"epsilon": 0.0}, "`epsilon` must be a number > 0; received 0.0"),
    ],
)
def test_barlow_twins_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        redundancy.barlow_twins_loss(np.ones((4, 2)), np.ones((4, 2)), **kwargs)
    with pytest.raises(ValueError, match=match):
        redundancy.BarlowTwinsLoss(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"variance_weight": -1.0}, "`variance_weight` must be a number >= 0; received -1.0"),
        ({"gamma": -1.0}, "`gamma` must be a number > 0; received -1.0"),
        ({"epsilon": True}, "`epsilon` must be a number > 0; received True"),
    ],
)
def test_vicreg_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        redundancy.vicreg_loss(np.ones((4, 2)), np.ones((4, 2)), **kwargs)
    with pytest.raises(ValueError, match=match):
        redundancy.VICRegLoss(**kwargs)
