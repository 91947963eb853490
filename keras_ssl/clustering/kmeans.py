"""k-means in TensorFlow ops: seeded k-means++ or random initialisation, Lloyd iterations,
empty-cluster re-seeding, and chunked assignment for large point sets.

Everything is a tensor op with stateless random draws, so :func:`kmeans` runs eagerly, inside
``tf.function`` and under XLA, and a given ``seed`` gives the same clusters on every run and
every device (no Python loop over points).
"""

import tensorflow as tf

from keras_ssl.validation import check_int

INITIALIZATIONS = ("kmeans++", "random")


def _check_points(points):
    points = tf.cast(tf.convert_to_tensor(points), tf.float32)
    if points.shape.rank != 2:
        raise ValueError(
            f"`points` must be rank 2 [num_points, dim]; received shape {tuple(points.shape)}. "
            "Fix: flatten or pool the features first."
        )
    return points


def squared_distances(points, centroids):
    """``[N, K]`` squared Euclidean distances ``|x|^2 - 2 x.c + |c|^2`` (clipped at 0)."""
    cross = tf.matmul(points, centroids, transpose_b=True)
    point_norms = tf.reduce_sum(tf.square(points), axis=1, keepdims=True)
    centroid_norms = tf.reduce_sum(tf.square(centroids), axis=1)[None, :]
    return tf.maximum(point_norms - 2.0 * cross + centroid_norms, 0.0)


def assign(points, centroids, batch_size=4096):
    """Nearest centroid of every point, computed ``batch_size`` points at a time.

    Args:
        points: ``[N, D]`` float points.
        centroids: ``[K, D]`` float centroids.
        batch_size: points per distance matrix (memory is ``batch_size * K`` floats).

    Returns:
        ``(assignments, distances)``: ``int32 [N]`` index of the nearest centroid (the lowest
        index on ties) and ``float32 [N]`` squared distance to it.
    """
    points = _check_points(points)
    centroids = tf.cast(tf.convert_to_tensor(centroids), tf.float32)
    if points.shape[0] is not None:
        batch_size = max(1, min(batch_size, points.shape[0]))
    count = tf.shape(points)[0]
    chunks = (count + batch_size - 1) // batch_size
    padded = tf.pad(points, [[0, chunks * batch_size - count], [0, 0]])
    padded = tf.reshape(padded, [chunks, batch_size, tf.shape(points)[1]])

    def nearest(chunk):
        distances = squared_distances(chunk, centroids)
        return tf.argmin(distances, axis=1, output_type=tf.int32), tf.reduce_min(distances, 1)

    assignments, distances = tf.map_fn(
        nearest,
        padded,
        fn_output_signature=(tf.TensorSpec([batch_size], tf.int32), tf.TensorSpec([batch_size])),
    )
    return tf.reshape(assignments, [-1])[:count], tf.reshape(distances, [-1])[:count]


def _seed(seed, *salt):
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0x5EED, tf.int64)])
    for value in salt:
        seed = tf.random.experimental.stateless_fold_in(seed, value)
    return seed


def initial_centroids(points, num_clusters, seed=0, init="kmeans++", batch_size=4096):
    """Seeded starting centroids: k-means++ (Arthur & Vassilvitskii 2007) or random points.

    ``"kmeans++"`` picks a uniformly random first point, then each next centroid among the
    points with probability proportional to the squared distance to the nearest centroid
    chosen so far; ``"random"`` picks ``num_clusters`` distinct random points.

    Args:
        points: ``[N, D]`` float points, ``N >= num_clusters``.
        num_clusters: ``K``.
        seed: integer (or scalar integer tensor) seed.
        init: ``"kmeans++"`` or ``"random"``.
        batch_size: points per distance computation.

    Returns:
        ``[K, D]`` float32 centroids, each a point of ``points``.
    """
    points = _check_points(points)
    count = tf.shape(points)[0]
    if init == "random":
        keys = tf.random.stateless_uniform([count], _seed(seed, 1))
        return tf.gather(points, tf.argsort(keys)[:num_clusters])
    first = tf.random.stateless_uniform([], _seed(seed, 2), maxval=count, dtype=tf.int32)
    centroids = tf.tile(points[first][None], [num_clusters, 1])
    _, nearest = assign(points, centroids[:1], batch_size)

    def body(index, centroids, nearest):
        # All-equal distances (every point already a centroid) fall back to uniform draws.
        logits = tf.math.log(tf.maximum(nearest, 1e-30))[None]
        choice = tf.random.stateless_categorical(logits, 1, _seed(seed, 3, index), tf.int32)
        point = tf.gather(points, choice[0, 0])
        centroids = tf.tensor_scatter_nd_update(centroids, [[index]], point[None])
        distances = tf.reduce_sum(tf.square(points - point), axis=1)
        return index + 1, centroids, tf.minimum(nearest, distances)

    _, centroids, _ = tf.while_loop(
        lambda index, *_: index < num_clusters, body, (tf.constant(1), centroids, nearest)
    )
    return centroids


def reseed_empty_clusters(points, centroids, assignments, distances):
    """Moves the centroids of empty clusters onto the points farthest from their centroids.

    The ``m`` empty clusters (in index order) take the ``m`` points with the largest distance
    to their assigned centroid (farthest first), so each re-seeded cluster owns at least that
    point at the next assignment. Vectorised; a no-op when no cluster is empty.

    Args:
        points: ``[N, D]`` points.
        centroids: ``[K, D]`` centroids.
        assignments: ``int32 [N]`` current assignments.
        distances: ``[N]`` squared distances of the points to their centroids.

    Returns:
        ``[K, D]`` centroids with the empty ones re-seeded.
    """
    num_clusters = centroids.shape[0] or tf.shape(centroids)[0]
    counts = tf.math.unsorted_segment_sum(tf.ones_like(assignments), assignments, num_clusters)
    empty = tf.equal(counts, 0)
    # Rank of each empty cluster among the empty ones (0, 1, ...); -1 for non-empty ones.
    # There are at most K - 1 empty clusters and at least K points, so every rank has a point.
    rank = tf.where(empty, tf.cumsum(tf.cast(empty, tf.int32)) - 1, -1)
    farthest = tf.argsort(distances, direction="DESCENDING", stable=True)
    donors = tf.gather(points, tf.gather(farthest, tf.maximum(rank, 0)))
    return tf.where(empty[:, None], donors, centroids)


def kmeans(
    points,
    num_clusters,
    num_iterations=20,
    seed=0,
    init="kmeans++",
    centroids=None,
    batch_size=4096,
):
    """Lloyd's k-means with seeded initialisation and empty-cluster re-seeding.

    Each iteration assigns every point to its nearest centroid, re-seeds the centroids of
    empty clusters (:func:`reseed_empty_clusters`) and moves every non-empty cluster's centroid
    to the mean of its points. The returned assignments are those of the final centroids.

    Args:
        points: ``[N, D]`` float points (DeepCluster: PCA-whitened, L2-normalised features).
        num_clusters: ``K``, at most ``N``.
        num_iterations: Lloyd iterations (DeepCluster / faiss: 20).
        seed: integer seed of the initialisation (the same seed gives the same clusters).
        init: ``"kmeans++"`` or ``"random"`` (see :func:`initial_centroids`).
        centroids: optional ``[K, D]`` starting centroids (then ``init`` and ``seed`` are not
            used).
        batch_size: points per distance matrix.

    Returns:
        ``(centroids, assignments)``: ``float32 [K, D]`` and ``int32 [N]``.

    References:
        Lloyd 1982; Arthur & Vassilvitskii 2007, "k-means++: the advantages of careful
        seeding"; Caron et al. 2018 (DeepCluster), https://arxiv.org/abs/1807.05520
    """
    points = _check_points(points)
    check_int(num_clusters, "num_clusters", 1, "pass the number of clusters, e.g. 100.")
    check_int(num_iterations, "num_iterations", 0, "use e.g. 20 Lloyd iterations.")
    check_int(batch_size, "batch_size", 1, "use e.g. 4096.")
    if init not in INITIALIZATIONS:
        raise ValueError(
            f"`init` must be one of {INITIALIZATIONS}; received {init!r}. Fix: use 'kmeans++'."
        )
    num_points = points.shape[0]
    if num_points is not None and num_points < num_clusters:
        raise ValueError(
            f"k-means needs at least as many points as clusters; received {num_points} points "
            f"for num_clusters={num_clusters}. Fix: cluster more points or lower num_clusters."
        )
    if centroids is None:
        centroids = initial_centroids(points, num_clusters, seed, init, batch_size)
    else:
        centroids = tf.cast(tf.convert_to_tensor(centroids), tf.float32)
        if centroids.shape.rank != 2 or centroids.shape[0] != num_clusters:
            raise ValueError(
                f"`centroids` must have shape [num_clusters={num_clusters}, dim]; received "
                f"{tuple(centroids.shape)}. Fix: pass one starting centroid per cluster."
            )

    def step(iteration, centroids):
        assignments, distances = assign(points, centroids, batch_size)
        centroids = reseed_empty_clusters(points, centroids, assignments, distances)
        assignments, _ = assign(points, centroids, batch_size)
        sums = tf.math.unsorted_segment_sum(points, assignments, num_clusters)
        counts = tf.math.unsorted_segment_sum(
            tf.ones_like(assignments, tf.float32), assignments, num_clusters
        )
        means = sums / tf.maximum(counts, 1.0)[:, None]
        return iteration + 1, tf.where(counts[:, None] > 0, means, centroids)

    _, centroids = tf.while_loop(
        lambda iteration, _: iteration < num_iterations, step, (tf.constant(0), centroids)
    )
    assignments, _ = assign(points, centroids, batch_size)
    return centroids, assignments
