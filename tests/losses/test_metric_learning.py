import itertools

import numpy as np
import pytest

from keras_ssl.losses import metric_learning as ml
from keras_ssl.testing import run_loss_test

RNG = np.random.default_rng(0)


def contrastive_reference(x_a, x_b, same, margin):
    """Chopra et al. 2005, per pair, as written in the seed lecture."""
    out = []
    for a, b, s in zip(x_a, x_b, same):
        d = np.linalg.norm(a - b)
        out.append(d**2 if s else max(0.0, margin - d) ** 2)
    return np.array(out)


def triplet_reference(anchor, positive, negative, margin, squared=True):
    power = 2 if squared else 1
    d_ap = np.linalg.norm(anchor - positive, axis=1) ** power
    d_an = np.linalg.norm(anchor - negative, axis=1) ** power
    return np.maximum(0.0, d_ap - d_an + margin)


def n_pair_reference(anchors, positives, l2_weight):
    out = []
    for i, a in enumerate(anchors):
        terms = [np.exp(a @ positives[j] - a @ positives[i]) for j in range(len(anchors)) if j != i]
        norms = 0.5 * (a @ a + positives[i] @ positives[i])
        out.append(np.log(1 + sum(terms)) + l2_weight * norms)
    return np.array(out)


def test_contrastive_margin_battery_and_hand_values():
    inputs = {
        "x_a": RNG.normal(size=(6, 3)).astype(np.float32),
        "x_b": RNG.normal(size=(6, 3)).astype(np.float32),
        "same": np.array([1, 0, 1, 0, 0, 1]),
        "margin": 2.5,
    }
    run_loss_test(
        ml.contrastive_margin, inputs, reference_fn=contrastive_reference, swap=("x_a", "x_b")
    )
    # Similar pair at distance 3: 9. Dissimilar at distance 1 with margin 2: (2 - 1)^2 = 1;
    # dissimilar at distance 5: beyond the margin, 0.
    x_a = np.zeros((3, 2), np.float32)
    x_b = np.array([[3, 0], [0, 1], [3, 4]], np.float32)
    values = ml.contrastive_margin(x_a, x_b, [1, 0, 0], margin=2.0)
    np.testing.assert_allclose(values, [9.0, 1.0, 0.0], rtol=1e-6, atol=1e-6)


def test_triplet_margin_battery_and_hand_values():
    inputs = {
        "anchor": RNG.normal(size=(5, 4)).astype(np.float32),
        "positive": RNG.normal(size=(5, 4)).astype(np.float32),
        "negative": RNG.normal(size=(5, 4)).astype(np.float32),
        "margin": 0.5,
    }
    run_loss_test(ml.triplet_margin, inputs, reference_fn=triplet_reference)
    run_loss_test(
        lambda **kw: ml.triplet_margin(**kw, squared=False),
        inputs,
        reference_fn=lambda **kw: triplet_reference(**kw, squared=False),
    )
    anchor = np.zeros((2, 1), np.float32)
    values = ml.triplet_margin(anchor, [[1.0], [1.0]], [[3.0], [1.2]], margin=0.5)
    np.testing.assert_allclose(values, [0.0, max(0, 1 - 1.44 + 0.5)], rtol=1e-5, atol=1e-5)


def test_n_pair_battery_and_closed_form():
    inputs = {
        "anchors": RNG.normal(size=(5, 3)).astype(np.float32),
        "positives": RNG.normal(size=(5, 3)).astype(np.float32),
        "l2_weight": 0.002,
    }
    run_loss_test(ml.n_pair, inputs, reference_fn=n_pair_reference)
    # Orthonormal anchors equal to their positives: log(1 + (N - 1) e^{-1}).
    eye = np.eye(4, dtype=np.float32)
    np.testing.assert_allclose(
        ml.n_pair(eye, eye), np.full(4, np.log(1 + 3 / np.e)), rtol=1e-6, atol=1e-6
    )


def test_batch_all_wrappers_match_explicit_pairs_and_triplets():
    embeddings = RNG.normal(size=(6, 3)).astype(np.float32)
    labels = np.array([0, 1, 0, 2, 1, 0])
    pairs = list(itertools.combinations(range(6), 2))
    expected_pairs = contrastive_reference(
        embeddings[[i for i, _ in pairs]],
        embeddings[[j for _, j in pairs]],
        [labels[i] == labels[j] for i, j in pairs],
        1.5,
    ).mean()
    loss = ml.ContrastiveMargin(margin=1.5)
    np.testing.assert_allclose(
        float(loss(labels, embeddings)), expected_pairs, rtol=1e-5, atol=1e-5
    )
    triplets = [
        (a, p, n)
        for a, p, n in itertools.product(range(6), repeat=3)
        if a != p and labels[a] == labels[p] and labels[a] != labels[n]
    ]
    a, p, n = (np.array(index) for index in zip(*triplets))
    expected = triplet_reference(embeddings[a], embeddings[p], embeddings[n], 0.3).mean()
    loss = ml.TripletMargin(margin=0.3)
    np.testing.assert_allclose(float(loss(labels, embeddings)), expected, rtol=1e-5, atol=1e-5)


def test_wrapper_configs_round_trip():
    for loss in (ml.ContrastiveMargin(2.0), ml.TripletMargin(0.1, squared=False), ml.NPair(0.01)):
        rebuilt = type(loss).from_config(loss.get_config())
        assert rebuilt.get_config() == loss.get_config()
    anchors, positives = RNG.normal(size=(2, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(
        float(ml.NPair(0.01)(anchors, positives)),
        n_pair_reference(anchors, positives, 0.01).mean(),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: ml.contrastive_margin(np.ones((2, 3)), np.ones((2, 3)), [1, 0], margin=0),
            "margin",
        ),
        (
            lambda: ml.triplet_margin(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 4))),
            "embedding size",
        ),
        (lambda: ml.n_pair(np.ones((2, 3, 1)), np.ones((2, 3, 1))), "rank 2"),
        (lambda: ml.n_pair(np.ones((2, 3)), np.ones((2, 3)), l2_weight=-1), "l2_weight"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
