import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.losses.swav import SwAVLoss, queued_sinkhorn_knopp, sinkhorn_knopp, swav_loss
from keras_ssl.testing import run_loss_test, two_replica_strategy


# ------------------------------------------------------------------- NumPy references
def sinkhorn_reference(scores, epsilon=0.05, iterations=3, mask=None):
    """The paper's Q* = Diag(u) exp(C^T Z / eps) Diag(v) (Sec. 3.1), written with the scaling
    vectors of Sinkhorn-Knopp: u makes every prototype's mass 1/K, v every example's mass 1/B;
    the codes are B Q* (one distribution per example). Float64, no shift, K x B layout."""
    scores = np.asarray(scores, np.float64)
    keep = np.ones(len(scores), bool) if mask is None else np.asarray(mask) > 0
    kernel = np.exp(scores[keep].T / epsilon)  # K x B
    prototypes, examples = kernel.shape
    v = np.ones(examples)
    for _ in range(iterations):
        u = (1.0 / prototypes) / (kernel @ v)
        v = (1.0 / examples) / (kernel.T @ u)
    codes = np.zeros_like(scores)
    codes[keep] = (u[:, None] * kernel * v[None, :]).T * examples
    return codes


def swav_loss_reference(codes, scores, temperature=0.1):
    """Eq. 1-2: l(z_t, q_s) = -sum_k q_s[k] log softmax(z_t^T c / tau)[k], each coded crop's
    code predicted by every other crop, averaged over the pairs."""
    codes, scores = np.asarray(codes, np.float64), np.asarray(scores, np.float64)
    total, pairs = 0.0, 0
    for g, q in enumerate(codes):
        for v, s in enumerate(scores):
            if v == g:
                continue
            x = s / temperature
            log_p = x - x.max(axis=-1, keepdims=True)
            log_p = log_p - np.log(np.exp(log_p).sum(axis=-1, keepdims=True))
            total = total - (q * log_p).sum(axis=-1)
            pairs += 1
    return total / pairs


def _unit_scores(rng, n, k, d=5):
    """Cosine scores of random unit projections and unit prototypes, as SwAV's, in [-1, 1]."""
    z = rng.normal(size=(n, d))
    c = rng.normal(size=(d, k))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=0, keepdims=True)
    return (z @ c).astype(np.float32)


# ----------------------------------------------------------------------- Sinkhorn-Knopp
@pytest.mark.parametrize("iterations", [1, 3, 10])
def test_sinkhorn_matches_the_papers_scaling_vectors(iterations):
    scores = _unit_scores(np.random.default_rng(0), n=12, k=5)
    codes = sinkhorn_knopp(scores, epsilon=0.2, iterations=iterations).numpy()
    expected = sinkhorn_reference(scores, 0.2, iterations)
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-6)


def test_codes_are_distributions_and_converge_to_an_equipartition():
    scores = _unit_scores(np.random.default_rng(1), n=20, k=4)
    codes = sinkhorn_knopp(scores, epsilon=0.05, iterations=3).numpy()
    # The last step normalises the examples: every code sums to 1 exactly.
    np.testing.assert_allclose(codes.sum(axis=1), 1.0, rtol=0, atol=1e-6)
    assert np.all(codes >= 0)
    # Prototype masses approach B / K = 5 with the iterations.
    converged = sinkhorn_knopp(scores, epsilon=0.05, iterations=200).numpy()
    np.testing.assert_allclose(converged.sum(axis=0), 5.0, rtol=1e-3, atol=1e-3)
    gap_3 = np.abs(codes.sum(axis=0) - 5.0).max()
    gap_1 = np.abs(sinkhorn_knopp(scores, 0.05, 1).numpy().sum(axis=0) - 5.0).max()
    assert gap_3 < gap_1


def test_closed_forms():
    # Equal scores: every example is split equally over the prototypes.
    codes = sinkhorn_knopp(np.full((6, 3), 0.3, np.float32), 0.05, 3).numpy()
    np.testing.assert_allclose(codes, 1 / 3, rtol=1e-6, atol=1e-7)
    # B = K examples, each closest to its own prototype: the codes are (almost) one-hot on it,
    # even though the raw scores favour prototype 0 for every example (equipartition).
    scores = np.eye(4, dtype=np.float32) * 0.5 + np.array([0.6, 0, 0, 0], np.float32)
    codes = sinkhorn_knopp(scores, 0.02, 50).numpy()
    np.testing.assert_allclose(codes, np.eye(4), atol=1e-3, rtol=0)
    assert np.argmax(scores, axis=1).tolist() == [0, 0, 0, 0]


def test_small_epsilon_neither_overflows_nor_underflows():
    # exp(1 / 0.005) overflows float32 and exp(-1 / 0.005) underflows; the global shift keeps
    # the codes finite and equal to the float64 reference.
    scores = _unit_scores(np.random.default_rng(2), n=10, k=4)
    codes = sinkhorn_knopp(scores, epsilon=0.01, iterations=3).numpy()
    assert np.all(np.isfinite(codes))
    np.testing.assert_allclose(codes, sinkhorn_reference(scores, 0.01, 3), rtol=1e-4, atol=1e-5)


def test_masked_rows_take_no_part():
    rng = np.random.default_rng(3)
    scores = _unit_scores(rng, n=10, k=4)
    mask = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1], np.float32)
    codes = sinkhorn_knopp(scores, 0.1, 3, mask=mask).numpy()
    np.testing.assert_array_equal(codes[:3], 0.0)
    np.testing.assert_allclose(codes[3:], sinkhorn_knopp(scores[3:], 0.1, 3), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        codes, sinkhorn_reference(scores, 0.1, 3, mask), atol=1e-6, rtol=1e-5
    )
    # A mask of ones is no mask.
    np.testing.assert_array_equal(
        sinkhorn_knopp(scores, 0.1, 3, mask=np.ones(10)).numpy(), sinkhorn_knopp(scores, 0.1, 3)
    )


def test_a_full_queue_joins_the_batch_and_a_filling_one_takes_no_part():
    rng = np.random.default_rng(6)
    scores, queued = _unit_scores(rng, n=6, k=4), _unit_scores(rng, n=8, k=4)
    full = queued_sinkhorn_knopp(scores, queued, tf.constant(True), 0.1, 3).numpy()
    expected = sinkhorn_reference(np.concatenate([queued, scores]), 0.1, 3)[8:]
    np.testing.assert_allclose(full, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(full - sinkhorn_reference(scores, 0.1, 3)).max() > 1e-3  # the queue counts
    filling = queued_sinkhorn_knopp(scores, queued, False, 0.1, 3).numpy()
    np.testing.assert_allclose(filling, sinkhorn_reference(scores, 0.1, 3), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(filling.sum(axis=1), 1.0, rtol=1e-5)


def test_codes_carry_no_gradient():
    scores = tf.constant(_unit_scores(np.random.default_rng(4), n=6, k=3))
    with tf.GradientTape() as tape:
        tape.watch(scores)
        codes = sinkhorn_knopp(scores)
    assert tape.gradient(codes, scores) is None


def test_two_replicas_on_halves_give_the_rows_of_the_global_codes():
    # Every statistic (total mass, prototype sums, the shift, B) is global. The second half
    # prefers other prototypes than the first, so per-replica Sinkhorn would differ.
    rng = np.random.default_rng(5)
    scores = _unit_scores(rng, n=8, k=4)
    scores[4:] = np.roll(scores[4:], 2, axis=1) + 0.3
    mask = np.array([0, 1, 1, 1, 1, 1, 0, 1], np.float32)
    expected = sinkhorn_knopp(scores, 0.05, 3, mask=mask).numpy()
    local = np.concatenate(
        [sinkhorn_knopp(scores[s], 0.05, 3, mask=mask[s]) for s in (slice(0, 4), slice(4, 8))]
    )
    assert np.abs(local - expected).max() > 0.05

    def replica_step(s, m):
        assert distribute.num_replicas() == 2
        return sinkhorn_knopp(s, 0.05, 3, mask=m)

    strategy = two_replica_strategy()
    dataset = tf.data.Dataset.from_tensor_slices((scores, mask)).batch(8)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
    codes = strategy.run(tf.function(replica_step), args=batch)
    halves = strategy.experimental_local_results(codes)
    np.testing.assert_allclose(np.concatenate(halves), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epsilon": 0}, r"`epsilon` must be a positive number; received 0.*Fix"),
        ({"epsilon": "a"}, r"`epsilon` must be a positive number; received 'a'"),
        ({"iterations": 0}, r"`iterations` must be a positive integer; received 0.*Fix"),
        ({"iterations": 2.5}, r"`iterations` must be a positive integer; received 2.5"),
        ({"scores": np.ones((2, 3, 4))}, r"\[batch, prototypes\]; received shape \(2, 3, 4\)"),
    ],
)
def test_bad_sinkhorn_arguments(kwargs, match):
    arguments = {"scores": np.ones((4, 3), np.float32), **kwargs}
    with pytest.raises(ValueError, match=match):
        sinkhorn_knopp(**arguments)


# ------------------------------------------------------------------ swapped prediction
def _loss_inputs(seed=0, coded=2, crops=5, batch=4, k=6):
    rng = np.random.default_rng(seed)
    scores = np.stack([_unit_scores(rng, batch, k) for _ in range(crops)])
    codes = np.stack([sinkhorn_reference(s, 0.05, 3) for s in scores[:coded]]).astype(np.float32)
    return {"codes": codes, "scores": scores, "temperature": 0.1}


def test_multicrop_loss_matches_the_papers_formula():
    run_loss_test(swav_loss, _loss_inputs(), reference_fn=swav_loss_reference)


def test_loss_wrapper_round_trip_and_reference():
    inputs = _loss_inputs(seed=1, crops=3)
    inputs["temperature"] = 0.25
    run_loss_test(
        swav_loss,
        inputs,
        reference_fn=swav_loss_reference,
        loss_object=SwAVLoss(temperature=0.25),
    )


def test_two_crops_swap_their_codes():
    # Hand-typed: crop 1's code [1, 0] is predicted by crop 2 with p = softmax([0, 0]) and
    # crop 2's code [0, 1] by crop 1 with p = softmax([0, 1 / 0.5]); the mean of the two.
    codes = np.array([[[1.0, 0.0]], [[0.0, 1.0]]], np.float32)
    scores = np.array([[[0.0, 1.0]], [[0.0, 0.0]]], np.float32)
    expected = (np.log(2.0) - np.log(np.exp(2) / (1 + np.exp(2)))) / 2
    run_loss_test(
        swav_loss, {"codes": codes, "scores": scores, "temperature": 0.5}, expected=expected
    )
    swapped = {"codes": codes[::-1].copy(), "scores": scores[::-1].copy(), "temperature": 0.5}
    np.testing.assert_allclose(swav_loss(**swapped), expected, rtol=1e-6, atol=1e-6)


def test_gradient_is_softmax_minus_the_other_crops_code():
    # d/ds_v of -q_g . log softmax(s_v / tau), averaged over the 2 (V - 1) pairs: for a small
    # crop v (predicting both codes) (2 p_v - q_1 - q_2) / (tau 2 (V - 1)); no gradient to codes.
    inputs = _loss_inputs(seed=2, crops=3, batch=3)
    codes, scores = tf.constant(inputs["codes"]), tf.constant(inputs["scores"])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([codes, scores])
        loss = tf.reduce_sum(swav_loss(codes, scores, 0.1))
    assert tape.gradient(loss, codes) is None
    grad = tape.gradient(loss, scores).numpy()
    p = tf.nn.softmax(scores / 0.1).numpy()
    q = inputs["codes"]
    np.testing.assert_allclose(grad[2], (2 * p[2] - q[0] - q[1]) / (0.1 * 4), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(grad[0], (p[0] - q[1]) / (0.1 * 4), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "codes, scores, match",
    [
        (np.ones((2, 3, 4)), np.ones((1, 3, 4)), r"at least 2 crops.*received scores of 1 crop"),
        (np.ones((3, 3, 4)), np.ones((2, 3, 4)), r"first ones being the 3 coded crops"),
        (np.ones((2, 3, 4)), np.ones((3, 2, 4)), r"same batch size; received codes of shape"),
        (np.ones((2, 3, 4)), np.ones((3, 3, 5)), r"same number of prototypes"),
        (np.ones((3, 4)), np.ones((3, 3, 4)), r"`codes` must be \[crops, batch, prototypes\]"),
    ],
)
def test_bad_loss_inputs(codes, scores, match):
    with pytest.raises(ValueError, match=match):
        swav_loss(codes, scores)


def test_bad_temperature():
    with pytest.raises(ValueError, match=r"`temperature` must be a positive number.*0.1"):
        SwAVLoss(temperature=-1)
    with pytest.raises(ValueError, match=r"`temperature` must be a positive number"):
        swav_loss(np.ones((2, 1, 2)), np.ones((2, 1, 2)), temperature=0)
