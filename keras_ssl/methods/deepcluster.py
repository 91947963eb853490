"""DeepCluster: alternate k-means on the network's features and classification of the clusters."""

import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.clustering import INITIALIZATIONS, apply_pca, fit_pca, kmeans
from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.methods.base import SSLMethod
from keras_ssl.validation import check_int

#: The batch key holding each image's dataset index (``int32 [batch]``).
INDICES = "indices"

_INDEXED_BATCHES = (
    "DeepCluster trains every view of an image on that image's cluster, so each batch must "
    "carry the dataset index of its images under 'indices' (image i of the clustered images "
    "has index i)"
)
_INDEXED_FIX = (
    "Fix: pass the NumPy images to fit (DeepCluster numbers them), or build the dataset with "
    "keras_ssl.datasets.make_ssl_dataset(images, indices=True, ...) and give DeepCluster the "
    "same images with model.adapt(images) or callbacks=[DeepClusterCallback(images)]."
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


class IndexedViews(tuple):
    """The views of a batch (a tuple, as ``compute_ssl_loss`` takes them) with the dataset index
    of each image, ``indices`` (``int32 [batch]``): every view of image ``j`` is trained on the
    cluster of ``indices[j]``."""

    def __new__(cls, views, indices):
        instance = super().__new__(cls, views)
        instance.indices = indices
        return instance


@keras.saving.register_keras_serializable(package="keras_ssl")
class DeepCluster(SSLMethod):
    """DeepCluster (Caron, Bojanowski, Joulin & Douze 2018, "Deep Clustering for Unsupervised
    Learning of Visual Features", https://arxiv.org/abs/1807.05520).

    Alternates two steps. **Clustering**, before every epoch (:meth:`cluster`, run by
    :class:`DeepClusterCallback`, which ``fit`` adds by itself): the current encoder (inference
    mode) embeds every un-augmented training image; the features are PCA-whitened to
    ``pca_dim`` dimensions, L2-normalised and clustered by k-means into ``num_clusters`` groups
    (TensorFlow ops: seeded k-means++, empty clusters re-seeded, deterministic by ``seed`` and
    the clustering round), and the cluster of every image is stored in ``assignments``, indexed
    by the image's position in the training set. **Training**, during the epoch: each batch
    carries its images' dataset indices (``"indices"``), and every augmented view of image
    ``i`` is trained on the pseudo-label ``assignments[i]`` by a linear classifier on the
    encoder's features, as in the paper. The classifier is re-initialised (and its optimizer
    slots reset) after every clustering, because the cluster numbering changes.

    Data: ``fit(images)`` with a NumPy array numbers the images itself. A ``tf.data`` pipeline
    must put the indices in its batches (``make_ssl_dataset(images, indices=True, ...)``) and
    give DeepCluster the un-augmented images the indices refer to: :meth:`adapt` (what
    ``keras-ssl train`` does), an explicit :class:`DeepClusterCallback`, or ``"images"`` in the
    dataset's own batches. Anything that cannot carry indices is refused with a ``ValueError``.

    Balanced classes: the paper samples images uniformly over the clusters. Here every
    example's loss is weighted by ``n / (K' * n_k)`` (``n`` clustered images, ``K'`` non-empty
    clusters, ``n_k`` images in the example's cluster): the expected loss and gradient equal
    those of sampling uniformly over clusters, while the input pipeline keeps its ordinary,
    seeded, resumable and evenly sharded order (``balanced=False`` gives weights of 1).

    Distribution: clustering runs outside the step on the primary copies of the variables and
    assigns the mirrored state, so all replicas use the same assignments; the step gathers the
    targets of its own images and its loss is a mean of per-example terms (no batch-level
    statistics), so N replicas match one device. XLA: the gather is a static-shape op.

    State (``keras.Variable``\\ s, saved with the model and restored by checkpoints):
    ``assignments`` (``int32 [clustering_examples]``, ``-1`` for indices not clustered),
    ``cluster_weights``, the last clustering's ``pca_mean``, ``pca_projection`` and
    ``centroids``, and ``clustering_round`` (seeds the next clustering).

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
        clustering_examples: the most training images (dataset indices ``0 ..
            clustering_examples - 1``); sizes ``assignments``. All training images are
            clustered every epoch, as in the paper.
        balanced: weight examples inversely to their cluster's size (see above).
        seed: seed of the k-means initialisations and the classifier re-initialisations.
        probe_classes: classes of the online linear probe, or ``None``.
    """

    default_preset = "crop_flip"

    loss_terms = ("loss", "pseudo_label_accuracy")

    #: Batches must carry each image's dataset index (``keras_ssl.experiment`` reads this).
    needs_example_indices = True

    def __init__(
        self,
        encoder,
        augmenter=None,
        num_clusters=100,
        pca_dim=256,
        whiten=True,
        kmeans_iterations=20,
        kmeans_init="kmeans++",
        clustering_examples=100_000,
        balanced=True,
        seed=0,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(encoder, augmenter=augmenter, probe_classes=probe_classes, **kwargs)
        check_int(num_clusters, "num_clusters", 2, "use about 10x the expected classes.")
        check_int(pca_dim, "pca_dim", 1, "use 256 (the paper) or the feature dimension.")
        check_int(kmeans_iterations, "kmeans_iterations", 1, "use 20.")
        check_int(
            clustering_examples,
            "clustering_examples",
            num_clusters,
            f"use at least num_clusters={num_clusters}, and at least the number of training "
            "images.",
        )
        check_int(seed, "seed", 0, "use a non-negative integer seed, e.g. 0.")
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
        self.clustering_images = None  # set by adapt(): what fit(dataset) clusters

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

    def build_heads(self, feature_shape):
        self.classifier.build(feature_shape)

    # --------------------------------------------------------------------- clustering
    def adapt(self, images):
        """Sets the un-augmented training images that ``fit`` on a dataset clusters.

        ``images[i]`` must be the image whose batches carry index ``i``, as
        ``make_ssl_dataset(images, indices=True, ...)`` numbers them; ``keras-ssl train`` calls
        this with its training images. ``fit`` on a NumPy array clusters that array instead.

        Args:
            images: ``[N, H, W, C]`` training images (``uint8`` or float in ``[0, 1]``),
                ``num_clusters <= N <= clustering_examples``.

        Returns:
            The images as a rank-4 NumPy array.
        """
        images = _image_array(images, self.image_shape)
        self._check_count(len(images))
        self.clustering_images = images
        return images

    def cluster(self, images, indices=None, batch_size=512):
        """The clustering step: k-means on the current features of the un-augmented ``images``.

        Embeds ``images`` with the current encoder (inference mode), fits the PCA(-whitening),
        L2-normalises and clusters with k-means (seed: ``seed`` and the clustering round), then
        stores every image's cluster at its index in ``assignments`` (other indices get
        ``-1``), the balancing weights, PCA and centroids, re-initialises the classifier and
        resets its optimizer slots.

        Args:
            images: ``[n, H, W, C]`` un-augmented training images (``uint8`` or float in
                ``[0, 1]``), ``n >= num_clusters``.
            indices: the dataset index of each image (``[n]`` distinct integers in
                ``[0, clustering_examples)``); default ``0 .. n - 1``.
            batch_size: images per encoder call.

        Returns:
            ``int32`` NumPy array ``[n]``: the cluster of each image.
        """
        images = _image_array(images, self.image_shape)
        indices = self._check_indices(indices, len(images))
        self._check_count(len(images))
        features = embed_images(self.encoder, images, batch_size)
        round_seed = self._round_seed(self.clustering_round)
        mean, projection, centroids, assignments = _cluster_features(
            tf.constant(features, tf.float32),
            self.projected_dim,
            self.whiten,
            self.num_clusters,
            self.kmeans_iterations,
            round_seed,
            self.kmeans_init,
        )
        assignments = assignments.numpy()
        counts = np.bincount(assignments, minlength=self.num_clusters).astype(np.float32)
        if self.balanced:
            weights = len(images) / (np.count_nonzero(counts) * np.maximum(counts, 1.0))
        else:
            weights = np.ones_like(counts)
        table = np.full(self.clustering_examples, -1, np.int32)
        table[indices] = assignments
        self.pca_mean.assign(mean)
        self.pca_projection.assign(projection)
        self.centroids.assign(centroids)
        self.cluster_weights.assign(weights.astype(np.float32))
        self.assignments.assign(table)
        self._reinitialize_classifier(round_seed)
        self.clustering_round.assign_add(1)
        return assignments

    def _round_seed(self, clustering_round):
        return tf.constant(self.seed * 100_003, tf.int64) + tf.cast(clustering_round, tf.int64)

    def _check_count(self, count, capacity=True):
        if count < self.num_clusters:
            raise ValueError(
                f"DeepCluster needs at least num_clusters={self.num_clusters} images to "
                f"cluster; received {count}. Fix: train on more images or lower num_clusters."
            )
        if capacity and count > self.clustering_examples:
            raise ValueError(
                f"DeepCluster stores the cluster of at most clustering_examples="
                f"{self.clustering_examples} images; received {count} training images. Fix: "
                f"construct it with clustering_examples={count} (or more)."
            )

    def _check_indices(self, indices, count):
        if indices is None:
            return np.arange(count)
        indices = np.asarray(indices).reshape(-1)
        if (
            len(indices) != count
            or not np.issubdtype(indices.dtype, np.integer)
            or (count and (indices.min() < 0 or indices.max() >= self.clustering_examples))
            or len(np.unique(indices)) != count
        ):
            raise ValueError(
                f"`indices` must be {count} distinct integers in [0, clustering_examples="
                f"{self.clustering_examples}), one per image; received {indices.dtype} indices "
                f"of shape {indices.shape}. Fix: pass each image's dataset index."
            )
        return indices

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

    def pseudo_labels(self, indices):
        """The pseudo-labels of the images with these dataset indices: their clusters in the
        last clustering (``assignments[indices]``); ``-1`` for an index that was not clustered.

        Args:
            indices: integer tensor ``[n]`` of dataset indices.

        Returns:
            ``int32 [n]`` tensor of cluster ids.
        """
        indices = tf.reshape(tf.cast(indices, tf.int32), [-1])
        inside = (indices >= 0) & (indices < self.clustering_examples)
        safe = tf.clip_by_value(indices, 0, self.clustering_examples - 1)
        return tf.where(inside, tf.gather(self.assignments, safe), -1)

    def predict_clusters(self, images, batch_size=512):
        """DeepCluster's clustering of ``images`` by the current encoder, leaving the model's
        state alone: PCA-whitening, L2 normalisation and k-means of their features with the
        seed of the last clustering (so right after :meth:`cluster` on the same images it
        returns the same assignments).

        Args:
            images: ``[N, H, W, C]`` images, ``N >= num_clusters``.
            batch_size: images per encoder call.

        Returns:
            ``int32`` NumPy array ``[N]`` of cluster ids.
        """
        images = _image_array(images, self.image_shape)
        self._check_count(len(images), capacity=False)
        features = embed_images(self.encoder, images, batch_size)
        last = tf.maximum(tf.cast(self.clustering_round, tf.int64) - 1, 0)
        *_, clusters = _cluster_features(
            tf.constant(features, tf.float32),
            self.projected_dim,
            self.whiten,
            self.num_clusters,
            self.kmeans_iterations,
            self._round_seed(last),
            self.kmeans_init,
        )
        return clusters.numpy()

    # --------------------------------------------------------------------------- step
    def unpack_batch(self, data):
        indices = _batch_indices(data)
        views, labels = super().unpack_batch(data)
        if indices is None:
            raise ValueError(f"{_INDEXED_BATCHES}; received a batch without them. {_INDEXED_FIX}")
        return IndexedViews(views, tf.reshape(tf.cast(indices, tf.int32), [-1])), labels

    def compute_ssl_loss(self, views, training):
        indices = getattr(views, "indices", None)
        if indices is None:
            raise ValueError(
                f"{_INDEXED_BATCHES}; received views without them. Fix: pass "
                "IndexedViews(views, indices) (unpack_batch makes them from batches)."
            )
        views = tuple(views)
        batch = tf.shape(views[0])[0]
        # Every view of image j is labelled with the cluster of image j.
        labels = tf.tile(self.pseudo_labels(indices), [len(views)])
        clustered = labels >= 0
        targets = tf.maximum(labels, 0)
        features = self.encoder(tf.concat(views, axis=0), training=training)
        logits = self.classifier(tf.cast(features, tf.float32))
        losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        weights = tf.where(clustered, tf.gather(self.cluster_weights, targets), 0.0)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        terms = {
            "loss": tf.reduce_mean(weights * losses),
            "pseudo_label_accuracy": tf.reduce_mean(correct),
        }
        return terms, features[:batch]

    def fit(self, x=None, y=None, batch_size=None, callbacks=None, **kwargs):
        """``SSLMethod.fit`` on batches that carry each image's dataset index, with a
        :class:`DeepClusterCallback` (clustering before every epoch) added when ``callbacks``
        has none.

        ``x`` is a NumPy array of images (numbered ``0 .. N - 1`` here and clustered), a dict
        of NumPy arrays (``"images"`` and/or ``"views"``, optional ``"labels"`` and
        ``"indices"``), or a ``tf.data.Dataset`` whose batches hold ``"indices"``; the added
        callback clusters the images given to :meth:`adapt`, else the dataset's ``"images"``.
        """
        callbacks = list(callbacks or [])
        explicit = any(isinstance(c, DeepClusterCallback) for c in callbacks)
        x, images = self._indexed_input(x, batch_size, needs_images=not explicit)
        if not explicit:
            callbacks.insert(0, DeepClusterCallback(images))
        return super().fit(x, y, batch_size=batch_size, callbacks=callbacks, **kwargs)

    def _indexed_input(self, x, batch_size, needs_images):
        """``(x with indices, what the clustering embeds)`` for ``fit``'s ``x``."""
        if isinstance(x, np.ndarray):
            self._check_fit_input(x, batch_size)
            return {"images": x, INDICES: np.arange(len(x), dtype=np.int32)}, x
        if isinstance(x, dict) and all(
            isinstance(v, np.ndarray) or (isinstance(v, (tuple, list)) and v) for v in x.values()
        ):
            images = x.get("images")
            if images is not None:
                self._check_fit_input(images, batch_size)
            first = images if images is not None else x.get("views", [None])[0]
            if first is None:
                raise ValueError(
                    f"A dict `x` must hold 'images' or 'views'; received keys {sorted(x)}. Fix: "
                    "pass {'images': x} or {'views': (v1, ...), 'images': x}."
                )
            x = {INDICES: np.arange(len(first), dtype=np.int32), **x}
            if images is None:
                images = self._adapted_images(needs_images, "a dict without 'images'")
            return x, images
        if isinstance(x, tf.data.Dataset):
            keys = _batch_keys(x.element_spec)
            if INDICES not in keys:
                raise ValueError(
                    f"{_INDEXED_BATCHES}; received a dataset whose batches hold "
                    f"{sorted(keys) or x.element_spec}. {_INDEXED_FIX}"
                )
            # The adapted array covers every image; one pass over a dataset may miss some.
            if self.clustering_images is not None or "images" not in keys:
                return x, self._adapted_images(needs_images, "a dataset without 'images'")
            return x, x
        raise ValueError(
            f"{_INDEXED_BATCHES}; received `x` of type {type(x).__name__}, which cannot carry "
            f"them. {_INDEXED_FIX}"
        )

    def _adapted_images(self, needs_images, received):
        if self.clustering_images is None and needs_images:
            raise ValueError(
                "DeepCluster clusters the un-augmented training images before every epoch; "
                f"received {received} and no images from adapt(). Fix: call "
                "model.adapt(images) with the images the indices refer to, or pass "
                "callbacks=[DeepClusterCallback(images)]."
            )
        return self.clustering_images

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
    """Runs :meth:`DeepCluster.cluster` on the un-augmented training images before every
    ``every_n_epochs``-th epoch.

    ``DeepCluster.fit`` adds one by itself; pass one explicitly to cluster less often or to
    name the images of a dataset that yields augmented views.

    Args:
        images: the un-augmented training images, ``[N, H, W, C]`` NumPy array whose image
            ``i`` is the one batches carry as index ``i``; or a finite ``tf.data.Dataset``
            whose elements hold ``"images"`` and ``"indices"`` (read once when training
            begins; indices it does not yield stay unclustered, ``-1``).
        every_n_epochs: cluster before epochs ``0, n, 2n, ...`` (a run resumed between two
            clusterings keeps the restored ``assignments``).
        batch_size: images per encoder call.
        verbose: 1 prints the number of non-empty clusters after each clustering.
    """

    def __init__(self, images, every_n_epochs=1, batch_size=512, verbose=0):
        super().__init__()
        check_int(every_n_epochs, "every_n_epochs", 1, "use 1 (the paper clusters every epoch).")
        check_int(batch_size, "batch_size", 1, "use e.g. 512.")
        if isinstance(images, tf.data.Dataset):
            missing = {"images", INDICES} - _batch_keys(images.element_spec)
            if missing:
                raise ValueError(
                    f"DeepClusterCallback reads 'images' and 'indices' from a dataset; received "
                    f"one without {sorted(missing)}. Fix: pass the un-augmented training images "
                    "as a NumPy array."
                )
        elif isinstance(images, np.ndarray):
            images = _image_array(images)
        else:
            raise ValueError(
                "DeepClusterCallback needs the un-augmented training images as a NumPy array "
                "or a tf.data.Dataset of 'images' and 'indices'; received "
                f"{type(images).__name__}. Fix: pass the training images (image i = index i)."
            )
        self.images = images
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self._images, self._indices = None, None

    def on_train_begin(self, logs=None):
        if not isinstance(self.model, DeepCluster):
            raise ValueError(
                f"DeepClusterCallback drives DeepCluster models; received "
                f"{type(self.model).__name__}. Fix: use it with keras_ssl.methods.DeepCluster."
            )
        if self._images is None:
            if isinstance(self.images, tf.data.Dataset):
                self._images, self._indices = _collect_indexed_images(self.images)
            else:
                self._images = self.images
            self.model._check_count(len(self._images))

    def on_epoch_begin(self, epoch, logs=None):
        if epoch % self.every_n_epochs:
            return
        assignments = self.model.cluster(self._images, self._indices, self.batch_size)
        if self.verbose:
            used = len(np.unique(assignments))
            print(f"Epoch {epoch + 1}: k-means on {len(assignments)} images, {used} clusters.")


# ------------------------------------------------------------------------------ helpers
_EMBEDDERS = weakref.WeakKeyDictionary()


def embed_images(encoder, images, batch_size=512):
    """``float32 [N, D]`` NumPy features of ``images`` under ``encoder(x, training=False)``.

    Fixed-size batches (the last one padded) go through one cached ``tf.function`` per
    encoder, so a pass traces once; an encoder built under a ``tf.distribute`` strategy is read
    in cross-replica context (the primary copies of its variables).

    Args:
        encoder: ``keras.Model`` mapping float ``[0, 1]`` images to ``[batch, D]``.
        images: ``[N, H, W, C]`` NumPy images (``uint8`` or float in ``[0, 1]``), ``N >= 1``.
        batch_size: images per encoder call.
    """
    check_int(batch_size, "batch_size", 1, "use e.g. 512.")
    embed = _EMBEDDERS.get(encoder)
    if embed is None:
        reference = weakref.ref(encoder)  # the cache must not keep the encoder alive

        @tf.function(reduce_retracing=True)
        def embed(batch):
            return tf.cast(reference()(to_float_images(batch), training=False), tf.float32)

        _EMBEDDERS[encoder] = embed
    size = min(batch_size, len(images))
    features = []
    for start in range(0, len(images), size):
        chunk = images[start : start + size]
        count = len(chunk)
        if count < size:
            chunk = np.concatenate([chunk, np.zeros((size - count, *chunk.shape[1:]), chunk.dtype)])
        features.append(embed(tf.constant(chunk)).numpy()[:count])
    return np.concatenate(features)


def _image_array(images, image_shape=None):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    check_image_batch(images, image_shape)
    return images


def _batch_indices(data):
    batch = data[0] if isinstance(data, (tuple, list)) else data
    return batch.get(INDICES) if isinstance(batch, dict) else None


def _batch_keys(spec):
    if isinstance(spec, (tuple, list)) and spec:
        spec = spec[0]
    return set(spec) if isinstance(spec, dict) else set()


def _collect_indexed_images(dataset):
    """The distinct ``(images, indices)`` of one pass over a dataset of indexed batches."""
    if int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "DeepClusterCallback reads a dataset's images in one pass; received an endless "
            "dataset (repeat()). Fix: pass the un-augmented training images as a NumPy array "
            "(model.adapt(images) or DeepClusterCallback(images))."
        )
    images, indices = [], []
    for element in dataset:
        batch = element[0] if isinstance(element, (tuple, list)) else element
        index = np.asarray(batch[INDICES]).reshape(-1)
        image = np.asarray(batch["images"])
        images.append(image.reshape((len(index), *image.shape[-3:])))
        indices.append(index)
    if not images:
        raise ValueError(
            "DeepClusterCallback received an empty dataset. Fix: pass the training images."
        )
    images, indices = np.concatenate(images), np.concatenate(indices)
    indices, first = np.unique(indices, return_index=True)
    if indices[0] != 0 or indices[-1] != len(indices) - 1:
        warnings.warn(
            f"DeepClusterCallback: one pass over the dataset yielded {len(indices)} distinct "
            f"indices in [{indices[0]}, {indices[-1]}]; images it did not yield stay "
            "unclustered (no loss) until a clustering includes them (a shuffled dataset that "
            "drops a remainder misses some). Fix: give DeepCluster all training images as a "
            "NumPy array (model.adapt(images) or DeepClusterCallback(images)).",
            stacklevel=2,
        )
    return images[first], indices
