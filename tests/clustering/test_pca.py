import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.clustering.pca import apply_pca, fit_pca


def _correlated(seed, n=200, d=5):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1])[:, None]
    return (rng.normal(size=(n, d)) @ mixing + rng.normal(size=d) * 3).astype(np.float32)


def test_components_match_numpy_eigendecomposition():
    x = _correlated(0)
    mean, projection = fit_pca(x, 3, whiten=False)
    centred = x.astype(np.float64) - x.mean(0)
    values, vectors = np.linalg.eigh(centred.T @ centred / len(x))
    expected = vectors[:, ::-1][:, :3]
    np.testing.assert_allclose(mean.numpy(), x.mean(0), rtol=1e-5, atol=1e-4)
    got = projection.numpy()
    for j in range(3):  # the same direction up to sign; the sign makes the largest entry > 0
        sign = np.sign(got[:, j] @ expected[:, j])
        np.testing.assert_allclose(got[:, j], sign * expected[:, j], atol=1e-4)
        assert got[np.argmax(np.abs(got[:, j])), j] > 0


def test_whitened_projection_has_unit_diagonal_covariance():
    x = _correlated(1)
    mean, projection = fit_pca(x, 4, whiten=True, epsilon=1e-8)
    projected = apply_pca(x, mean, projection).numpy().astype(np.float64)
    np.testing.assert_allclose(projected.mean(0), 0.0, atol=1e-4)
    covariance = projected.T @ projected / len(x)
    np.testing.assert_allclose(covariance, np.eye(4), atol=2e-3)


def test_projection_keeps_most_variance_in_the_first_component():
    x = _correlated(2)
    mean, projection = fit_pca(x, 5, whiten=False)
    variances = apply_pca(x, mean, projection).numpy().var(0)
    assert np.all(np.diff(variances) <= 1e-3)  # sorted, largest first
    np.testing.assert_allclose(variances.sum(), x.var(0).sum(), rtol=1e-4, atol=0.0001)


def test_deterministic_and_traceable():
    x = _correlated(3)
    eager = fit_pca(x, 2)
    graph = tf.function(lambda t: fit_pca(t, 2))(tf.constant(x))
    for a, b in zip(eager, graph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "x, kwargs, match",
    [
        (np.zeros((4, 3, 1)), {"num_components": 2}, r"`features` must be rank 2"),
        (np.zeros((4, 3)), {"num_components": 4}, r"`num_components` must be an integer in"),
        (np.zeros((4, 3)), {"num_components": 0}, r"`num_components` must be an integer in"),
        (np.zeros((4, 3)), {"num_components": 2, "epsilon": 0}, r"`epsilon` must be a positive"),
    ],
)
def test_bad_input(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_pca(x, **kwargs)


def test_apply_rejects_features_of_another_dimension():
    mean, projection = fit_pca(_correlated(4), 2)
    with pytest.raises(ValueError, match=r"dimension 3 but the projection expects 5"):
        apply_pca(np.zeros((2, 3)), mean, projection)
