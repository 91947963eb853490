import numpy as np
import pytest

from keras_ssl import testing
from keras_ssl.losses import RebalancedCrossEntropy, rebalanced_cross_entropy


def numpy_rebalanced_cross_entropy(targets, logits, class_weights):
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -class_weights[np.argmax(targets, -1)] * (targets * log_softmax).sum(-1)


def test_rebalanced_cross_entropy():
    # By hand: Q = 2, target (0.75, 0.25) -> q* = 0 with weight 2; logits (0, 0) -> 2 * log 2.
    loss = rebalanced_cross_entropy([[0.75, 0.25]], [[0.0, 0.0]], [2.0, 0.5])
    np.testing.assert_allclose(loss, [2 * np.log(2)], rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(0)
    targets = rng.random((3, 4, 6)).astype(np.float32)
    targets /= targets.sum(-1, keepdims=True)
    inputs = {
        "targets": targets,
        "logits": rng.normal(size=(3, 4, 6)).astype(np.float32),
        "class_weights": rng.random(6).astype(np.float32) + 0.5,
    }
    testing.run_loss_test(
        rebalanced_cross_entropy,
        inputs,
        reference_fn=numpy_rebalanced_cross_entropy,
        loss_object=RebalancedCrossEntropy(class_weights=inputs["class_weights"]),
    )
    with pytest.raises(ValueError, match=r"same number of bins.*\(2, 3\), \(2, 4\)"):
        rebalanced_cross_entropy(np.ones((2, 3)), np.ones((2, 4)), np.ones(3))
