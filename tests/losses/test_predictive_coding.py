import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.losses import cpc_info_nce
from keras_ssl.losses.contrastive import step_logits
from keras_ssl.losses.predictive_coding import cpc_terms
from keras_ssl.testing import run_loss_test


def numpy_cpc_steps(predictions, all_z, offset, first_step):
    """From the paper: per prediction, -log softmax over every patch of the batch of p . z at
    the target k rows below, and whether the target scores highest; one pair of lists a step."""
    _, rows, cols, dim = all_z.shape
    keys = all_z.reshape(-1, dim).astype(np.float64)
    steps = []
    for step, prediction in enumerate(predictions, start=first_step):
        losses, hits = [], []
        for i in range(prediction.shape[0]):
            for r in range(rows - step):
                for c in range(cols):
                    scores = keys @ prediction[i, r, c].astype(np.float64)
                    target = ((offset + i) * rows + r + step) * cols + c
                    log_norm = np.log(np.sum(np.exp(scores - scores.max()))) + scores.max()
                    losses.append(log_norm - scores[target])
                    hits.append(np.argmax(scores) == target)
        steps.append((losses, hits))
    return steps


def random_inputs(seed, first_step, n=2, total=3, rows=5, cols=3, dim=4):
    rng = np.random.default_rng(seed)
    return {
        "predictions": [
            rng.normal(size=(n, rows - k, cols, dim)).astype(np.float32)
            for k in (first_step, first_step + 1)
        ],
        "all_z": rng.normal(size=(total, rows, cols, dim)).astype(np.float32),
        "offset": 1,
        "first_step": first_step,
    }


# ------------------------------------------------------------------------ cpc_info_nce
def test_positive_indices_by_hand():
    # Global batch of 2 images, a 3x2 grid: patch (image i, row r, col c) is key (i*3 + r)*2 + c.
    all_z = tf.zeros((2, 3, 2, 1))
    _, labels = step_logits(tf.zeros((2, 2, 2, 1)), all_z, step=1, offset=0)
    # Queries (i, r, c) for context rows r = 0, 1; targets one row below.
    np.testing.assert_array_equal(labels, [2, 3, 4, 5, 8, 9, 10, 11])
    _, labels = step_logits(tf.zeros((2, 1, 2, 1)), all_z, step=2, offset=0)
    np.testing.assert_array_equal(labels, [4, 5, 10, 11])
    # The second replica (offset 1) holds image 1 only.
    _, labels = step_logits(tf.zeros((1, 2, 2, 1)), all_z, step=1, offset=1)
    np.testing.assert_array_equal(labels, [8, 9, 10, 11])


def test_cpc_info_nce_hand_value_and_numpy_reference():
    # Two images, two rows, one column, d = 1: keys z = [0, 1 | 0, 2] (image 0 rows 0-1, image
    # 1 rows 0-1). Image 0 predicts p = 1 for its row 1 (key 1): scores [0, 1, 0, 2] and loss
    # log(1 + e + 1 + e^2) - 1. Image 1 predicts p = 0: all scores 0, loss log 4.
    z = np.array([0.0, 1.0, 0.0, 2.0], np.float32).reshape(2, 2, 1, 1)
    prediction = np.array([1.0, 0.0], np.float32).reshape(2, 1, 1, 1)
    (losses,) = cpc_info_nce([prediction], z)
    expected = [np.log(2 + np.e + np.e**2) - 1, np.log(4.0)]
    np.testing.assert_allclose(np.asarray(losses).reshape(-1), expected, rtol=1e-6, atol=1e-6)

    def flat_losses(**inputs):
        return np.concatenate([np.asarray(loss).reshape(-1) for loss in cpc_info_nce(**inputs)])

    def flat_reference(**inputs):
        return np.concatenate([losses for losses, _ in numpy_cpc_steps(**inputs)])

    for first_step in (1, 2):
        # No keras.losses.Loss wrapper: the loss needs the gathered grid and an offset besides
        # (y_true, y_pred), so it lives as the pure function the method calls.
        run_loss_test(flat_losses, random_inputs(0, first_step), reference_fn=flat_reference)


def test_split_over_replicas_equals_the_global_loss():
    rng = np.random.default_rng(1)
    all_z = rng.normal(size=(4, 3, 2, 3)).astype(np.float32)
    predictions = [rng.normal(size=(4, 3 - k, 2, 3)).astype(np.float32) for k in (1, 2)]
    whole = cpc_info_nce(predictions, all_z)
    for offset in (0, 2):
        part = cpc_info_nce([p[offset : offset + 2] for p in predictions], all_z, offset=offset)
        for got, want in zip(part, whole):
            np.testing.assert_allclose(
                got, np.asarray(want)[offset : offset + 2], rtol=1e-6, atol=1e-6
            )


def test_cpc_info_nce_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"all_z.*\[batch, rows, cols, dim\]; received shape"):
        cpc_info_nce([np.zeros((1, 1, 2, 3))], np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"predictions\[0\] \(step k=1\).*\[n, 2, 2, 3\]"):
        cpc_info_nce([np.zeros((1, 3, 2, 3))], np.zeros((1, 3, 2, 3)))
    with pytest.raises(ValueError, match=r"predictions\[1\] \(step k=3\).*\[n, 0, 2, 3\]"):
        cpc_info_nce([np.zeros((1, 1, 2, 3))] * 2, np.zeros((1, 3, 2, 3)), first_step=2)


# --------------------------------------------------------------------------- cpc_terms
def test_cpc_terms_hand_value():
    # The keys of the test above. Image 0's target (key 1) is beaten by key 3; image 1 scores
    # every key 0 and the argmax of a tie is key 0, not its target (key 3): no hits.
    z = np.array([0.0, 1.0, 0.0, 2.0], np.float32).reshape(2, 2, 1, 1)
    prediction = np.array([1.0, 0.0], np.float32).reshape(2, 1, 1, 1)
    loss, accuracy = cpc_terms([prediction], z)
    expected = (np.log(2 + np.e + np.e**2) - 1 + np.log(4.0)) / 2
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    assert float(accuracy) == 0.0
    # p = 3 for image 1: its target (key 3, score 6) scores highest.
    loss, accuracy = cpc_terms([np.array([1.0, 3.0], np.float32).reshape(2, 1, 1, 1)], z)
    assert float(accuracy) == 0.5


def test_cpc_terms_numpy_reference():
    # The mean over steps of each step's mean loss (and hit rate), not the mean over all
    # predictions: later steps have fewer predictions but the same weight.
    for first_step in (1, 2):
        inputs = random_inputs(0, first_step)
        steps = numpy_cpc_steps(**inputs)
        run_loss_test(
            lambda **kwargs: cpc_terms(**kwargs)[0],
            inputs,
            expected=np.mean([np.mean(losses) for losses, _ in steps]),
        )
        np.testing.assert_allclose(
            float(cpc_terms(**inputs)[1]), np.mean([np.mean(hits) for _, hits in steps])
        )


def test_cpc_terms_loss_is_the_mean_over_steps_of_the_mean_cpc_info_nce():
    inputs = random_inputs(1, first_step=2)
    expected = np.mean([np.mean(loss) for loss in cpc_info_nce(**inputs)])
    np.testing.assert_allclose(float(cpc_terms(**inputs)[0]), expected, rtol=1e-6)


def test_cpc_terms_of_replica_shares_average_to_the_global_terms():
    # Equal shares (2 images per replica): the mean of the replicas' terms is the global value.
    rng = np.random.default_rng(2)
    all_z = rng.normal(size=(4, 3, 2, 3)).astype(np.float32)
    predictions = [rng.normal(size=(4, 3 - k, 2, 3)).astype(np.float32) for k in (1, 2)]
    whole = cpc_terms(predictions, all_z)
    parts = [
        cpc_terms([p[offset : offset + 2] for p in predictions], all_z, offset=offset)
        for offset in (0, 2)
    ]
    for index in (0, 1):
        np.testing.assert_allclose(
            np.mean([float(part[index]) for part in parts]), float(whole[index]), rtol=1e-6
        )


def test_cpc_terms_compile_with_xla_and_take_low_precision_predictions():
    inputs = random_inputs(3, first_step=1)
    compiled = tf.function(lambda p, z: cpc_terms(p, z, 1, 1), jit_compile=True)
    loss, accuracy = compiled(inputs["predictions"], inputs["all_z"])
    eager = cpc_terms(**inputs)
    np.testing.assert_allclose(float(loss), float(eager[0]), rtol=1e-5)
    np.testing.assert_allclose(float(accuracy), float(eager[1]))
    half = [tf.cast(p, tf.float16) for p in inputs["predictions"]]
    loss, _ = cpc_terms(half, inputs["all_z"], 1, 1)
    assert loss.dtype == tf.float32
