"""PCA (optionally whitening) of feature matrices, in TensorFlow ops."""

import tensorflow as tf

from keras_ssl.validation import check_int, check_positive_number


def _check_features(features, name="features"):
    features = tf.cast(tf.convert_to_tensor(features), tf.float32)
    if features.shape.rank != 2:
        raise ValueError(
            f"`{name}` must be rank 2 [num_examples, dim]; received shape "
            f"{tuple(features.shape)}. Fix: flatten or pool the features first."
        )
    return features


def fit_pca(features, num_components, whiten=True, epsilon=1e-5):
    """Principal components of ``features`` (eigenvectors of their covariance).

    The covariance ``(X - mean)^T (X - mean) / N`` is decomposed with ``tf.linalg.eigh``; the
    ``num_components`` eigenvectors of the largest eigenvalues form the projection, each
    signed so that its entry of largest magnitude is positive (a deterministic result). With
    ``whiten`` each component is divided by ``sqrt(eigenvalue + epsilon)``, so projected
    features have (nearly) unit variance per component, as DeepCluster's PCA-whitening does.

    Args:
        features: ``[N, D]`` float features.
        num_components: output dimension ``K``, ``1 <= K <= D``.
        whiten: scale the components to unit variance.
        epsilon: added to the eigenvalues before whitening (keeps directions of zero variance
            finite).

    Returns:
        ``(mean, projection)``: ``mean`` ``[D]`` and ``projection`` ``[D, K]`` float32, to use
        with :func:`apply_pca`.
    """
    features = _check_features(features)
    dim = features.shape[-1]
    limit = "" if dim is None else f", {dim}"
    num_components = check_int(
        num_components,
        "num_components",
        fix=f"use at most the feature dimension{limit} (DeepCluster uses 256 for 4096-d features).",
        maximum=dim,
    )
    check_positive_number(epsilon, "epsilon", "use e.g. 1e-5.")
    mean = tf.reduce_mean(features, axis=0)
    centred = features - mean
    count = tf.cast(tf.shape(features)[0], tf.float32)
    covariance = tf.matmul(centred, centred, transpose_a=True) / count
    eigenvalues, eigenvectors = tf.linalg.eigh(covariance)  # ascending
    eigenvalues = tf.reverse(eigenvalues, [0])[:num_components]
    components = tf.reverse(eigenvectors, [1])[:, :num_components]
    largest = tf.gather(
        tf.transpose(components), tf.argmax(tf.abs(components), axis=0), batch_dims=1
    )
    components = components * tf.where(largest < 0, -1.0, 1.0)
    if whiten:
        components = components * tf.math.rsqrt(tf.maximum(eigenvalues, 0.0) + epsilon)
    return mean, components


def apply_pca(features, mean, projection):
    """``(features - mean) @ projection``: features ``[N, D]`` -> ``[N, K]`` (see :func:`fit_pca`).

    Args:
        features: ``[N, D]`` float features.
        mean: ``[D]`` mean from :func:`fit_pca`.
        projection: ``[D, K]`` projection from :func:`fit_pca`.

    Returns:
        ``[N, K]`` float32 projected features.
    """
    features = _check_features(features)
    if features.shape[-1] is not None and projection.shape[0] != features.shape[-1]:
        raise ValueError(
            f"`features` have dimension {features.shape[-1]} but the projection expects "
            f"{projection.shape[0]}. Fix: apply the PCA fitted on features of the same encoder."
        )
    return tf.matmul(features - mean, projection)
