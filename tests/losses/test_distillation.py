import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.losses.distillation import (
    DINOLoss,
    batch_center,
    dino_loss,
    dino_terms,
    teacher_entropy,
    teacher_probabilities,
)
from keras_ssl.testing import run_loss_test, two_replica_strategy


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def dino_loss_reference(
    teacher_logits, student_logits, center=None, student_temp=0.1, teacher_temp=0.04
):
    """DINO Algorithm 1, H(t, s) = -sum(softmax((t - C) / tpt) * log softmax(s / tps)), with
    the multi-crop sum over every (teacher crop, other student crop) pair averaged over pairs."""
    c = 0.0 if center is None else np.asarray(center, np.float64)
    total, pairs = 0.0, 0
    for g, t in enumerate(np.asarray(teacher_logits, np.float64)):
        q = _softmax((t - c) / teacher_temp)
        for v, s in enumerate(np.asarray(student_logits, np.float64)):
            if v == g:
                continue
            total = total - (q * np.log(_softmax(s / student_temp))).sum(axis=-1)
            pairs += 1
    return total / pairs


def _inputs(seed=0, global_crops=2, crops=5, batch=4, k=7):
    rng = np.random.default_rng(seed)
    return {
        "teacher_logits": rng.normal(size=(global_crops, batch, k)).astype(np.float32),
        "student_logits": rng.normal(size=(crops, batch, k)).astype(np.float32),
        "center": rng.normal(size=(k,)).astype(np.float32),
        "student_temp": 0.3,
        "teacher_temp": 0.2,
    }


def test_multicrop_loss_matches_the_papers_algorithm():
    run_loss_test(dino_loss, _inputs(), reference_fn=dino_loss_reference)


def test_loss_wrapper_round_trip_and_reference():
    inputs = _inputs(seed=1, crops=4)
    del inputs["center"]
    run_loss_test(
        dino_loss,
        inputs,
        reference_fn=dino_loss_reference,
        loss_object=DINOLoss(student_temp=0.3, teacher_temp=0.2),
    )


def test_two_crops_is_algorithm_1_exactly():
    # Algorithm 1: loss = H(t1, s2) / 2 + H(t2, s1) / 2.
    inputs = _inputs(seed=2, crops=2)
    t, s = inputs["teacher_logits"], inputs["student_logits"]
    c, tps, tpt = inputs["center"], inputs["student_temp"], inputs["teacher_temp"]

    def h(teacher, student):
        return -(_softmax((teacher - c) / tpt) * np.log(_softmax(student / tps))).sum(axis=1)

    expected = h(t[0], s[1]) / 2 + h(t[1], s[0]) / 2
    np.testing.assert_allclose(dino_loss(**inputs), expected, rtol=1e-5, atol=1e-5)


def test_hand_computed_value():
    # Teacher q1 = (1/2, 1/2), q2 = (3/4, 1/4); student p1 = (1/2, 1/2), p2 = (3/4, 1/4).
    # H(q1, p2) = -(1/2) ln(3/4) - (1/2) ln(1/4) = 2 ln 2 - (1/2) ln 3;  H(q2, p1) = ln 2.
    logits = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]], np.float32)
    expected = (3 * np.log(2.0) - 0.5 * np.log(3.0)) / 2
    run_loss_test(
        dino_loss,
        {
            "teacher_logits": logits,
            "student_logits": logits,
            "student_temp": 1.0,
            "teacher_temp": 1.0,
        },
        expected=expected,
        atol=1e-6,
    )


def test_identical_uniform_distributions_give_log_k():
    k = 9
    zeros = np.zeros((2, 3, k), np.float32)
    run_loss_test(
        dino_loss,
        {
            "teacher_logits": zeros,
            "student_logits": np.zeros((6, 3, k), np.float32),
            "center": np.full((k,), 4.0, np.float32),  # a constant centre changes nothing
        },
        expected=np.log(k),
    )


def test_centre_is_read_not_mutated_and_shifts_cancel():
    inputs = _inputs(seed=3)
    center = tf.Variable(inputs["center"])
    before = center.numpy().copy()
    values = dino_loss(**dict(inputs, center=center))
    np.testing.assert_array_equal(center.numpy(), before)
    # Shifting every teacher logit and the centre by the same vector leaves the targets alone.
    shift = np.linspace(-2, 3, 7).astype(np.float32)
    shifted = dino_loss(
        **dict(inputs, teacher_logits=inputs["teacher_logits"] + shift, center=before + shift)
    )
    np.testing.assert_allclose(shifted, values, rtol=1e-5, atol=1e-5)


def test_swapping_the_global_crops_in_teacher_and_student_is_symmetric():
    inputs = _inputs(seed=4, crops=4)
    swapped = dict(
        inputs,
        teacher_logits=inputs["teacher_logits"][::-1],
        student_logits=np.concatenate(
            [inputs["student_logits"][1::-1], inputs["student_logits"][2:]]
        ),
    )
    np.testing.assert_allclose(dino_loss(**swapped), dino_loss(**inputs), rtol=1e-6, atol=1e-6)


def test_list_of_crops_equals_stacked_tensor():
    inputs = _inputs(seed=5)
    listed = dict(
        inputs,
        teacher_logits=list(inputs["teacher_logits"]),
        student_logits=list(inputs["student_logits"]),
    )
    np.testing.assert_allclose(dino_loss(**listed), dino_loss(**inputs), rtol=1e-6, atol=1e-6)


def test_gradient_reaches_only_the_student_and_matches_the_closed_form():
    # d loss / d s_v = (1 / (P * tps)) * sum_{g != v} (p_v - q_g) per image, P = G (V - 1).
    inputs = _inputs(seed=6, crops=4, batch=3)
    teacher = tf.constant(inputs["teacher_logits"])
    student = tf.constant(inputs["student_logits"])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([teacher, student])
        loss = tf.reduce_sum(dino_loss(teacher, student, inputs["center"], 0.3, 0.2))
    assert tape.gradient(loss, teacher) is None
    q = _softmax((inputs["teacher_logits"] - inputs["center"]) / 0.2)
    p = _softmax(inputs["student_logits"] / 0.3)
    pairs = 2 * 3
    expected = np.zeros_like(p)
    for v in range(4):
        for g in range(2):
            if g != v:
                expected[v] += p[v] - q[g]
    expected /= pairs * 0.3
    np.testing.assert_allclose(tape.gradient(loss, student), expected, atol=1e-6)


def test_teacher_probabilities_centre_and_sharpen():
    logits = np.array([[2.0, 1.0, 0.0]], np.float32)
    center = np.array([1.0, 0.0, 0.0], np.float32)
    probabilities = teacher_probabilities(logits, center, 0.5)
    np.testing.assert_allclose(
        probabilities, _softmax((logits - center) / 0.5), rtol=1e-6, atol=1e-6
    )
    sharp = teacher_probabilities(logits, None, 0.04)
    assert sharp.numpy()[0, 0] > 0.999  # low temperature -> nearly one-hot
    with pytest.raises(ValueError, match="centre value per output"):
        teacher_probabilities(logits, np.zeros((4,), np.float32), 0.1)


def test_temperature_may_be_a_scheduled_tensor():
    inputs = _inputs(seed=7)
    as_tensor = dino_loss(**dict(inputs, teacher_temp=tf.constant(0.2)))
    np.testing.assert_allclose(as_tensor, dino_loss(**inputs), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"teacher_logits": np.zeros((4, 7))}, "crops, batch, K"),
        ({"student_logits": np.zeros((1, 4, 7))}, "at least 2 student crops"),
        ({"teacher_logits": np.zeros((3, 4, 7)), "student_logits": np.zeros((2, 4, 7))}, "2 stu"),
        ({"student_logits": np.zeros((5, 4, 8))}, "number of outputs K"),
        ({"student_logits": np.zeros((5, 3, 7))}, "batch size"),
        ({"center": np.zeros((2, 3, 7))}, "centre value per output"),
        ({"student_logits": []}, "at least one crop"),
        ({"student_temp": 0.0}, "student_temp"),
        ({"teacher_temp": -1}, "teacher_temp"),
    ],
)
def test_bad_input(changes, match):
    with pytest.raises(ValueError, match=match):
        dino_loss(**dict(_inputs(), **changes))


def test_wrapper_rejects_bad_temperature():
    with pytest.raises(ValueError, match="student_temp"):
        DINOLoss(student_temp=0)


# ------------------------------------------------------- teacher entropy and batch centre
def teacher_entropy_reference(teacher_logits, center, teacher_temp):
    """Mean over crops and images of -sum_k q_k log q_k, q = softmax((t - c) / tpt)."""
    q = _softmax((np.asarray(teacher_logits, np.float64) - center) / teacher_temp)
    return np.mean(-(q * np.log(q)).sum(axis=-1))


def test_teacher_entropy_matches_its_definition_and_the_collapse_limits():
    inputs = _inputs(seed=8)
    t, c, tpt = inputs["teacher_logits"], inputs["center"], inputs["teacher_temp"]
    np.testing.assert_allclose(
        teacher_entropy(t, c, tpt), teacher_entropy_reference(t, c, tpt), rtol=1e-5
    )
    uniform = np.zeros((2, 3, 7), np.float32)
    np.testing.assert_allclose(teacher_entropy(uniform, None, 0.04), np.log(7.0), rtol=1e-6)
    one_hot = np.zeros((2, 3, 7), np.float32)
    one_hot[..., 2] = 100.0
    assert float(teacher_entropy(one_hot, None, 0.04)) == 0.0  # xlogy: 0 log 0 = 0


def test_batch_center_is_the_mean_teacher_output_over_crops_and_images():
    t = _inputs(seed=9)["teacher_logits"]  # [2 crops, 4 images, 7]
    np.testing.assert_allclose(batch_center(t), t.reshape(-1, 7).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(batch_center(list(t)), batch_center(t), rtol=1e-6)


def test_batch_center_of_two_replicas_is_the_global_one():
    t = np.random.default_rng(10).normal(size=(2, 8, 5)).astype(np.float32)
    expected = t.reshape(-1, 5).mean(axis=0)
    local = np.stack([batch_center(t[:, s]) for s in (slice(0, 4), slice(4, 8))])
    assert np.abs(local - expected).max() > 1e-3  # per-replica centres would differ

    def replica_step(half):
        assert distribute.num_replicas() == 2
        return batch_center(tf.transpose(half, [1, 0, 2]))

    strategy = two_replica_strategy()
    dataset = tf.data.Dataset.from_tensor_slices(np.transpose(t, [1, 0, 2])).batch(8)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
    centres = strategy.experimental_local_results(strategy.run(tf.function(replica_step), (batch,)))
    for centre in centres:
        np.testing.assert_allclose(centre, expected, rtol=1e-5, atol=1e-6)


def test_dino_terms_are_the_mean_loss_the_entropy_and_the_centre():
    inputs = _inputs(seed=11)
    terms, centre = dino_terms(**inputs)
    assert set(terms) == {"loss", "teacher_entropy"}
    np.testing.assert_allclose(terms["loss"], np.mean(dino_loss_reference(**inputs)), rtol=1e-5)
    t, c, tpt = inputs["teacher_logits"], inputs["center"], inputs["teacher_temp"]
    expected_entropy = teacher_entropy_reference(t, c, tpt)
    np.testing.assert_allclose(terms["teacher_entropy"], expected_entropy, rtol=1e-5)
    np.testing.assert_allclose(centre, batch_center(t), rtol=1e-6)
