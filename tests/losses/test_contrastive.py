import numpy as np
import pytest

from keras_ssl import losses
from keras_ssl.testing import run_loss_test


def _normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def nt_xent_reference(z_a, z_b, temperature):
    """SimCLR Algorithm 1, written literally: views interleaved as 2k-1, 2k."""
    n = len(z_a)
    z = np.empty((2 * n, z_a.shape[1]))
    z[0::2], z[1::2] = z_a, z_b
    s = _normalize(z) @ _normalize(z).T
    loss = np.empty(2 * n)
    for i in range(2 * n):
        j = i + 1 if i % 2 == 0 else i - 1
        denominator = sum(np.exp(s[i, k] / temperature) for k in range(2 * n) if k != i)
        loss[i] = -np.log(np.exp(s[i, j] / temperature) / denominator)
    # keras_ssl orders rows as all first views, then all second views.
    return np.concatenate([loss[0::2], loss[1::2]])


def info_nce_reference(query, positive, negatives, temperature):
    q, p = _normalize(query), _normalize(positive)
    out = []
    for i in range(len(q)):
        negs = _normalize(negatives if negatives.ndim == 2 else negatives[i])
        logits = np.concatenate([[q[i] @ p[i]], negs @ q[i]]) / temperature
        out.append(-logits[0] + np.log(np.exp(logits).sum()))
    return np.array(out)


def test_nt_xent_battery():
    rng = np.random.default_rng(0)
    inputs = {
        "z_a": rng.normal(size=(6, 5)).astype(np.float32),
        "z_b": rng.normal(size=(6, 5)).astype(np.float32),
        "temperature": 0.3,
    }
    run_loss_test(
        losses.nt_xent,
        inputs,
        reference_fn=nt_xent_reference,
        swap=("z_a", "z_b"),
        loss_object=losses.NTXent(temperature=0.3),
    )


def test_nt_xent_closed_form_for_orthogonal_pairs():
    # Identical views on orthonormal vectors: s = 1 with the partner, 0 with the 2N-2 others.
    n, temperature = 4, 0.5
    z = np.eye(8, dtype=np.float32)[:n]
    expected = np.log(1 + (2 * n - 2) * np.exp(-1 / temperature))
    run_loss_test(
        losses.nt_xent, {"z_a": z, "z_b": z, "temperature": temperature}, expected=expected
    )


def test_nt_xent_hand_computed_two_images():
    # N = 2, 1-d embeddings (+1, -1): views agree, so s(partner)=1, s(other image)=-1 twice.
    z_a = np.array([[1.0], [-1.0]], np.float32)
    z_b = np.array([[2.0], [-3.0]], np.float32)
    expected = -np.log(np.e / (np.e + 2 * np.exp(-1.0)))
    values = np.asarray(losses.nt_xent(z_a, z_b, temperature=1.0))
    np.testing.assert_allclose(values, np.full(4, expected), rtol=1e-6, atol=1e-6)


def test_nt_xent_replica_shards_average_to_global_loss():
    rng = np.random.default_rng(1)
    z_a = rng.normal(size=(8, 4)).astype(np.float32)
    z_b = rng.normal(size=(8, 4)).astype(np.float32)
    full = np.asarray(losses.nt_xent(z_a, z_b, 0.5))
    shards = [
        np.asarray(
            losses.nt_xent(z_a[r * 4 : r * 4 + 4], z_b[r * 4 : r * 4 + 4], 0.5, z_a, z_b, r * 4)
        )
        for r in range(2)
    ]
    np.testing.assert_allclose(
        np.mean([s.mean() for s in shards]), full.mean(), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(shards[1][:4], full[4:8], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(shards[1][4:], full[12:], rtol=1e-6, atol=1e-6)


def test_nt_xent_is_invariant_to_embedding_scale():
    rng = np.random.default_rng(2)
    z_a, z_b = rng.normal(size=(2, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(
        losses.nt_xent(z_a, z_b, 0.2),
        losses.nt_xent(7.0 * z_a, 0.1 * z_b, 0.2),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"z_a": np.ones((1, 4)), "z_b": np.ones((1, 4))}, "at least 2 images"),
        ({"z_a": np.ones((3, 4)), "z_b": np.ones((3, 5))}, "same embedding size"),
        ({"z_a": np.ones((3, 4, 1)), "z_b": np.ones((3, 4, 1))}, "rank 2"),
        ({"z_a": np.ones((3, 4)), "z_b": np.ones((3, 4)), "temperature": 0.0}, "positive"),
    ],
)
def test_nt_xent_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        losses.nt_xent(**kwargs)


def test_info_nce_with_shared_queue_matches_reference():
    rng = np.random.default_rng(3)
    inputs = {
        "query": rng.normal(size=(5, 6)).astype(np.float32),
        "positive": rng.normal(size=(5, 6)).astype(np.float32),
        "negatives": rng.normal(size=(11, 6)).astype(np.float32),
        "temperature": 0.2,
    }
    run_loss_test(losses.info_nce, inputs, reference_fn=info_nce_reference)


def test_info_nce_with_per_query_negatives_matches_reference():
    rng = np.random.default_rng(4)
    inputs = {
        "query": rng.normal(size=(4, 3)).astype(np.float32),
        "positive": rng.normal(size=(4, 3)).astype(np.float32),
        "negatives": rng.normal(size=(4, 7, 3)).astype(np.float32),
        "temperature": 0.1,
    }
    run_loss_test(losses.info_nce, inputs, reference_fn=info_nce_reference)


def test_info_nce_in_batch_negatives_and_wrapper():
    rng = np.random.default_rng(5)
    query = rng.normal(size=(6, 4)).astype(np.float32)
    positive = rng.normal(size=(6, 4)).astype(np.float32)
    # In-batch negatives = the other rows' positives.
    expected = np.array(
        [
            info_nce_reference(
                query[i : i + 1], positive[i : i + 1], np.delete(positive, i, 0), 0.1
            )[0]
            for i in range(6)
        ]
    )
    run_loss_test(
        losses.info_nce,
        {"query": query, "positive": positive, "temperature": 0.1},
        reference_fn=lambda **_: expected,
        loss_object=losses.InfoNCE(temperature=0.1),
    )


def test_info_nce_closed_form_and_unnormalized():
    # Positive logit a, m negatives with logit 0: loss = log(1 + m * exp(-a)).
    query = np.array([[2.0, 0.0]], np.float32)
    positive = np.array([[1.5, 0.0]], np.float32)
    negatives = np.array([[0.0, 1.0], [0.0, -4.0], [0.0, 2.0]], np.float32)
    values = losses.info_nce(query, positive, negatives, temperature=1.0, normalize=False)
    np.testing.assert_allclose(values, [np.log(1 + 3 * np.exp(-3.0))], rtol=1e-6, atol=1e-6)


def test_info_nce_bad_negatives_shape():
    with pytest.raises(ValueError, match="negatives"):
        losses.info_nce(np.ones((2, 3)), np.ones((2, 3)), np.ones((3,)), temperature=0.1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"positive": None},
        {"positive": np.ones((2, 3)), "all_positives": np.ones((4, 3))},
        {"positive": None, "all_positives": np.ones((4, 3)), "negatives": np.ones((5, 3))},
    ],
    ids=["no-positive", "both-positives", "gathered-with-negatives"],
)
def test_info_nce_takes_one_kind_of_positive(kwargs):
    with pytest.raises(ValueError, match="info_nce takes each query's `positive`"):
        losses.info_nce(np.ones((2, 3)), temperature=0.1, **kwargs)


def ctr_reference(queries, all_keys, temperature, offset=0):
    """MoCo v3's Algorithm 1 per query, in float64: CE(q k^T / t, global index) * 2t."""
    logits = _normalize(queries.astype(np.float64)) @ _normalize(all_keys.astype(np.float64)).T
    logits /= temperature
    labels = offset + np.arange(len(queries))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_softmax[np.arange(len(queries)), labels] * 2 * temperature


@pytest.mark.parametrize(("temperature", "offset"), [(0.2, 0), (1.0, 3), (0.5, 6)])
def test_moco_v3_contrastive_matches_a_numpy_reference(temperature, offset):
    rng = np.random.default_rng(1)
    inputs = {
        "queries": rng.normal(size=(4, 5)).astype(np.float32),
        "all_keys": rng.normal(size=(10, 5)).astype(np.float32),  # the global batch: 10 keys
        "temperature": temperature,
        "offset": offset,
    }
    run_loss_test(losses.moco_v3_contrastive, inputs, reference_fn=ctr_reference, atol=1e-6)


def test_moco_v3_contrastive_closed_forms():
    # Queries orthogonal to every key: all logits 0, so -log(1 / N) * 2t = 2t log N.
    q = np.eye(6, dtype=np.float32)[:3]
    k = np.eye(6, dtype=np.float32)[3:]
    run_loss_test(
        losses.moco_v3_contrastive,
        {"queries": q, "all_keys": k, "temperature": 0.2},
        expected=2 * 0.2 * np.log(3),
        atol=1e-7,
    )
    # Keys equal to (orthonormal) queries: logit 1/t for the positive, 0 for the N - 1 others.
    t = 0.5
    expected = 2 * t * (-1 / t + np.log(np.exp(1 / t) + 2))
    values = losses.moco_v3_contrastive(2 * q, 3 * q, t)  # scale-free: cosine similarities
    np.testing.assert_allclose(values, np.full(3, expected), rtol=1e-6, atol=1e-7)


def gathered_info_nce(queries, all_keys, offset=0):
    return losses.info_nce(queries, None, temperature=0.3, all_positives=all_keys, offset=offset)


def gathered_ctr(queries, all_keys, offset=0):
    return losses.moco_v3_contrastive(queries, all_keys, 0.2, offset)


@pytest.mark.parametrize("loss_fn", [gathered_info_nce, gathered_ctr])
def test_gathered_keys_split_over_replicas_equal_the_global_batch(loss_fn):
    # Two "replicas" with their halves of the queries and the gathered keys (labels offset by
    # replica_id * n) give exactly the per-query losses of one device on the whole batch.
    rng = np.random.default_rng(2)
    q = rng.normal(size=(8, 4)).astype(np.float32)
    k = rng.normal(size=(8, 4)).astype(np.float32)
    whole = np.asarray(loss_fn(q, k))
    halves = [np.asarray(loss_fn(q[r * 4 : r * 4 + 4], k, r * 4)) for r in (0, 1)]
    np.testing.assert_allclose(np.concatenate(halves), whole, rtol=1e-6, atol=1e-7)
    # On one device the gathered keys are the in-batch positives, row for row.
    in_batch = np.asarray(losses.info_nce(q, k, temperature=0.3))
    np.testing.assert_array_equal(gathered_info_nce(q, k), in_batch)
