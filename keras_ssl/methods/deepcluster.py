"""DeepCluster: alternate k-means on the network's features and classification of the clusters."""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.clustering.kmeans import INITIALIZATIONS, kmeans, squared_distances
from keras_ssl.clustering.pca import apply_pca, fit_pca
from keras_ssl.evaluation.features import as_image_array, extract_features
from keras_ssl.images import to_float_images
from keras_ssl.methods.base import SSLMethod
from keras_ssl.methods.momentum import copy_network


def _check_int(value, name, minimum, fix):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; received {value!r}. Fix: {fix}"
        )


@tf.function(reduce_retracing=True)
def _cluster_features(features, pca_dim, whiten, num_clusters, iterations, seed, init):
    """PCA(-whitening) -> L2 normalisation -> k-means, as one traced computation."""
    mean, projection = fit_pca(features, pca_dim, whiten=whiten)
    points = tf.math.l2_normalize(apply_pca(features, mean, projection), axis=1)
    centroids, assignments = kmeans(
        points, num_clusters, num_iterations=iterations, seed=seed, init=init
    )
    return mean, projection, centroids, assignments


@keras.saving.register_keras_serializable(package="keras_ssl")
class DeepCluster(SSLMethod):
    """DeepCluster (Caron, Bojanowski, Joulin & Douze 2018, "Deep Clustering for Unsupervised
    Learning of Visual Features", https://arxiv.org/abs/1807.05520).

    Alternates two steps. **Clustering**, before every epoch (:meth:`cluster`, run by
    :class:`DeepClusterCallback`, which ``fit`` adds by itself): features of the training
    images (all of them, or a fixed seeded sample of ``clustering_examples``) are
    PCA-whitened to ``pca_dim`` dimensions, L2-normalised and clustered by k-means into
    ``num_clusters`` groups (TensorFlow ops: seeded k-means++, empty clusters re-seeded,
    deterministic by ``seed`` and the clustering round). **Training**, during the epoch: the
    cluster ids are pseudo-labels for a linear classifier on the encoder's features, which is
    re-initialised (and its optimizer slots reset) after every clustering, because the cluster
    numbering changes; encoder and classifier minimise the cross-entropy.

    Pseudo-labels in the step: rather than carrying example indices through the input
    pipeline, every training view is labelled with its nearest centroid under a frozen copy
    of the encoder taken at clustering time (``assignment_encoder``, inference mode) and the
    stored PCA: for the clustered images this is exactly the k-means assignment, and an
    augmented view gets the cluster its own features fall in at clustering time. The
    pseudo-labels are therefore fixed for the epoch, as in the paper.

    Balanced sampling: the paper samples images uniformly over clusters. Here every example's
    loss is weighted by ``n / (K' * n_k)`` (``n`` clustered images, ``K'`` non-empty clusters,
    ``n_k`` images in the example's cluster), which makes the expected loss of uniform sampling
    equal to that of sampling uniform over clusters and keeps the ordinary ``tf.data``
    pipeline (``balanced=False`` gives plain weights of 1).

    Distribution: clustering runs outside the step on the primary copies of the variables and
    assigns the mirrored state, so all replicas use the same centroids; the step's loss is a
    mean of per-example terms (no batch-level statistics) and matches one device.

    State (``keras.Variable``\\ s, saved with the model and restored by checkpoints): the
    frozen ``assignment_encoder``, ``pca_mean``, ``pca_projection``, ``centroids``,
    ``cluster_weights``, ``assignments`` (of the clustered sample, ``-1`` padded) and
    ``clustering_round``.

    Paper settings: AlexNet/VGG, k = 10 000 for ImageNet (10x the classes), PCA to 256
    dimensions, SGD with momentum 0.9, learning rate 0.05, weight decay 1e-5, random resized
    crops and flips (plus Sobel filtering, not applied here).

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``keras_ssl.augment.presets.crop_flip`` (one view).
        num_clusters: ``k``, about 10x the expected number of classes (paper: 10 000 on
            ImageNet; 100 for 10-class data).
        pca_dim: PCA output dimension (paper: 256); capped at the feature dimension ``D``.
        whiten: whiten the PCA components (the paper's PCA-whitening).
        kmeans_iterations: Lloyd iterations per clustering (faiss default: 20).
        kmeans_init: ``"kmeans++"`` or ``"random"``.
        clustering_examples: number of training images clustered every epoch (a fixed seeded
            sample when the training set is larger; the paper clusters all of it).
        balanced: weight examples inversely to their cluster's size (see above).
        seed: seed of the sample, the k-means initialisations and the classifier
            re-initialisations.
        probe_classes: classes of the online linear probe, or ``None``.
    """

    loss_terms = ("loss", "pseudo_label_accuracy")

    def __init__(
        self,
        encoder,
        augmenter=None,
        num_clusters=100,
        pca_dim=256,
        whiten=True,
        kmeans_iterations=20,
        kmeans_init="kmeans++",
        clustering_examples=10000,
        balanced=True,
        seed=0,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(encoder, augmenter=augmenter, probe_classes=probe_classes, **kwargs)
        _check_int(num_clusters, "num_clusters", 2, "use about 10x the expected classes.")
        _check_int(pca_dim, "pca_dim", 1, "use 256 (the paper) or the feature dimension.")
        _check_int(kmeans_iterations, "kmeans_iterations", 1, "use 20.")
        _check_int(
            clustering_examples,
            "clustering_examples",
            num_clusters,
            f"cluster at least num_clusters={num_clusters} images, e.g. 10000.",
        )
        _check_int(seed, "seed", 0, "use a non-negative integer seed, e.g. 0.")
        if kmeans_init not in INITIALIZATIONS:
            raise ValueError(
                f"`kmeans_init` must be one of {INITIALIZATIONS}; received {kmeans_init!r}. "
                "Fix: use 'kmeans++'."
            )
        self.num_clusters = num_clusters
        self.pca_dim = pca_dim
        self.whiten = whiten
        self.kmeans_iterations = kmeans_iterations
        self.kmeans_init = kmeans_init
        self.clustering_examples = clustering_examples
        self.balanced = balanced
        self.seed = seed
        self.projected_dim = min(pca_dim, self.feature_dim)
        self.classifier = keras.layers.Dense(num_clusters, dtype="float32", name="classifier")

        def state(name, shape, dtype="float32", initializer="zeros"):
            return self.add_weight(
                shape=shape,
                dtype=dtype,
                initializer=initializer,
                trainable=False,
                autocast=False,
                name=name,
            )

        self.pca_mean = state("pca_mean", (self.feature_dim,))
        self.pca_projection = state("pca_projection", (self.feature_dim, self.projected_dim))
        self.centroids = state("centroids", (num_clusters, self.projected_dim))
        self.cluster_weights = state("cluster_weights", (num_clusters,), initializer="ones")
        self.assignments = state(
            "assignments", (clustering_examples,), "int32", keras.initializers.Constant(-1)
        )
        self.clustering_round = state("clustering_round", (), "int32")
        self.build()

    def default_augmenter(self):
        from keras_ssl.augment import presets

        return presets.crop_flip(self.image_shape)

    def build_heads(self, feature_shape):
        self.classifier.build(feature_shape)
        self.assignment_encoder = copy_network(self.encoder)
        for weight in self.assignment_encoder.weights:
            weight.trainable = False

    # --------------------------------------------------------------------- clustering
    def clustering_sample(self, images):
        """The fixed seeded sample of ``images`` that :meth:`cluster` uses (all if few)."""
        images = as_image_array(images)
        if len(images) <= self.clustering_examples:
            return images
        order = np.random.default_rng(self.seed).permutation(len(images))
        return images[np.sort(order[: self.clustering_examples])]

    def cluster(self, images, batch_size=512):
        """The clustering step: k-means on the current features of ``images``.

        Extracts features with the current encoder (inference mode), fits the PCA, clusters
        with k-means (seed: ``seed`` and the clustering round), then stores the state,
        freezes a copy of the encoder for the pseudo-labels, re-initialises the classifier
        and resets its optimizer slots.

        Args:
            images: ``[N, H, W, C]`` training images (``uint8`` or float in ``[0, 1]``),
                ``N >= num_clusters``; a sample of ``clustering_examples`` is used if larger.
            batch_size: images per encoder call.

        Returns:
            ``int32`` NumPy array ``[n]``: the cluster of each clustered image.
        """
        images = self.clustering_sample(images)
        if len(images) < self.num_clusters:
            raise ValueError(
                f"DeepCluster needs at least num_clusters={self.num_clusters} images to "
                f"cluster; received {len(images)}. Fix: train on more images or lower "
                "num_clusters."
            )
        features = extract_features(self.encoder, images, batch_size, normalize=False)
        round_seed = tf.constant(self.seed * 100_003, tf.int64) + tf.cast(
            self.clustering_round, tf.int64
        )
        mean, projection, centroids, assignments = _cluster_features(
            tf.constant(features, tf.float32),
            self.projected_dim,
            self.whiten,
            self.num_clusters,
            self.kmeans_iterations,
            round_seed,
            self.kmeans_init,
        )
        counts = tf.math.unsorted_segment_sum(
            tf.ones_like(assignments, tf.float32), assignments, self.num_clusters
        )
        if self.balanced:
            used = tf.reduce_sum(tf.cast(counts > 0, tf.float32))
            weights = float(len(images)) / (used * tf.maximum(counts, 1.0))
        else:
            weights = tf.ones_like(counts)
        padded = tf.pad(
            assignments, [[0, self.clustering_examples - len(images)]], constant_values=-1
        )
        self.pca_mean.assign(mean)
        self.pca_projection.assign(projection)
        self.centroids.assign(centroids)
        self.cluster_weights.assign(weights)
        self.assignments.assign(padded)
        for source, target in zip(self.encoder.weights, self.assignment_encoder.weights):
            target.assign(source)
        self._reinitialize_classifier(round_seed)
        self.clustering_round.assign_add(1)
        return assignments.numpy()

    def _reinitialize_classifier(self, round_seed):
        seed = int(round_seed.numpy()) % (2**31 - 1)
        kernel = keras.initializers.GlorotUniform(seed=seed)(self.classifier.kernel.shape)
        self.classifier.kernel.assign(kernel)
        self.classifier.bias.assign(tf.zeros_like(self.classifier.bias))
        optimizer = getattr(self, "optimizer", None)
        if optimizer is None:
            return
        prefixes = tuple(f"{v.path.replace('/', '_')}_" for v in self.classifier.weights)
        for slot in optimizer.variables:
            if slot.name.startswith(prefixes):
                slot.assign(tf.zeros_like(slot))

    def pseudo_labels(self, images):
        """Cluster of each image under the frozen clustering-time encoder, PCA and centroids.

        Args:
            images: float ``[n, H, W, C]`` tensor in ``[0, 1]``.

        Returns:
            ``int32 [n]`` tensor of cluster ids.
        """
        features = tf.cast(self.assignment_encoder(images, training=False), tf.float32)
        points = tf.math.l2_normalize(
            apply_pca(features, self.pca_mean, self.pca_projection), axis=1
        )
        distances = squared_distances(points, tf.convert_to_tensor(self.centroids))
        return tf.argmin(distances, axis=1, output_type=tf.int32)

    def predict_clusters(self, images, batch_size=256):
        """Cluster ids ``[N]`` of ``images`` from the last clustering (see
        :meth:`pseudo_labels`); for the clustered images these are the k-means assignments."""
        images = as_image_array(images)
        labels = [
            self.pseudo_labels(to_float_images(tf.constant(images[i : i + batch_size])))
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate([keras.ops.convert_to_numpy(x) for x in labels])

    # --------------------------------------------------------------------------- step
    def compute_ssl_loss(self, views, training):
        views = tuple(views)
        batch = tf.shape(views[0])[0]
        inputs = tf.concat(views, axis=0)
        labels = tf.stop_gradient(self.pseudo_labels(inputs))
        features = self.encoder(inputs, training=training)
        logits = self.classifier(tf.cast(features, tf.float32))
        losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        weights = tf.gather(self.cluster_weights, labels)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        terms = {
            "loss": tf.reduce_mean(weights * losses),
            "pseudo_label_accuracy": tf.reduce_mean(correct),
        }
        return terms, features[:batch]

    def fit(self, x=None, y=None, batch_size=None, callbacks=None, **kwargs):
        """``SSLMethod.fit`` with a :class:`DeepClusterCallback` on ``x`` added when
        ``callbacks`` has none (clustering before every epoch)."""
        callbacks = list(callbacks or [])
        if not any(isinstance(c, DeepClusterCallback) for c in callbacks):
            callbacks.insert(0, DeepClusterCallback(x, batch_size=batch_size or 512))
        return super().fit(x, y, batch_size=batch_size, callbacks=callbacks, **kwargs)

    def get_config(self):
        return {
            **super().get_config(),
            "num_clusters": self.num_clusters,
            "pca_dim": self.pca_dim,
            "whiten": self.whiten,
            "kmeans_iterations": self.kmeans_iterations,
            "kmeans_init": self.kmeans_init,
            "clustering_examples": self.clustering_examples,
            "balanced": self.balanced,
            "seed": self.seed,
        }


class DeepClusterCallback(keras.callbacks.Callback):
    """Runs :meth:`DeepCluster.cluster` before every ``every_n_epochs``-th epoch.

    ``DeepCluster.fit`` adds one on its training data by itself; pass one explicitly to
    cluster other images (e.g. un-augmented ones) or less often.

    Args:
        images: ``[N, H, W, C]`` images, or the ``tf.data.Dataset`` given to ``fit`` (batches
            of images, ``{"images": ...}``, ``{"views": (v1, ...)}`` whose first view is used,
            or ``(images, labels)``); read once, up to the model's ``clustering_examples``.
        every_n_epochs: cluster before epochs ``0, n, 2n, ...``.
        batch_size: images per encoder call.
        verbose: 1 prints the number of non-empty clusters after each clustering.
    """

    def __init__(self, images, every_n_epochs=1, batch_size=512, verbose=0):
        super().__init__()
        _check_int(every_n_epochs, "every_n_epochs", 1, "use 1 (the paper clusters every epoch).")
        if not isinstance(images, (np.ndarray, tf.data.Dataset)):
            raise ValueError(
                f"DeepClusterCallback needs images as a NumPy array or a tf.data.Dataset; "
                f"received {type(images).__name__}. Fix: pass the training images (or the "
                "dataset given to fit)."
            )
        self.images = images
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self._sample = None

    def on_train_begin(self, logs=None):
        if not isinstance(self.model, DeepCluster):
            raise ValueError(
                f"DeepClusterCallback drives DeepCluster models; received "
                f"{type(self.model).__name__}. Fix: use it with keras_ssl.methods.DeepCluster."
            )
        if self._sample is None:
            self._sample = self.model.clustering_sample(
                _collect_images(self.images, self.model.clustering_examples)
            )

    def on_epoch_begin(self, epoch, logs=None):
        if epoch % self.every_n_epochs:
            return
        assignments = self.model.cluster(self._sample, self.batch_size)
        if self.verbose:
            used = len(np.unique(assignments))
            print(f"Epoch {epoch + 1}: k-means on {len(assignments)} images, {used} clusters.")


def _collect_images(images, limit):
    """Up to ``limit`` images from an array or from the batches of a dataset."""
    if isinstance(images, np.ndarray):
        return images
    collected, count = [], 0
    for element in images:
        if isinstance(element, (tuple, list)):
            element = element[0]
        if isinstance(element, dict):
            element = element["images"] if "images" in element else element["views"][0]
        batch = keras.ops.convert_to_numpy(element)
        batch = batch[None] if batch.ndim == 3 else batch
        collected.append(batch)
        count += len(batch)
        if count >= limit:
            break
    return np.concatenate(collected)[:limit] if collected else np.zeros((0, 1, 1, 1))
