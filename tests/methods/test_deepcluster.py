import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment import presets
from keras_ssl.clustering import apply_pca, fit_pca, kmeans
from keras_ssl.datasets import EpochCounter
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.evaluation import extract_features
from keras_ssl.evaluation.clustering import clustering_accuracy
from keras_ssl.images import to_float_images
from keras_ssl.methods.deepcluster import DeepCluster, DeepClusterCallback
from keras_ssl.methods.indexed_batches import IndexedViews
from keras_ssl.optimizers import build_optimizer

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "deepcluster_fashion_mnist.py"
# The dataset-collection path warns when one pass misses indices (the battery's second batch).
PARTIAL_PASS = "ignore:DeepClusterCallback. one pass"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {
        "num_clusters": 4,
        "pca_dim": 4,
        "kmeans_iterations": 5,
        "clustering_examples": 16,
        "probe_classes": 3,
    }
    return DeepCluster(encoder, **{**options, **kwargs})


def make_images(count, seed=0):
    return np.random.default_rng(seed).random((count, 8, 8, 1), dtype=np.float32)


def augment(images, kind):
    """Fixed, strong 'augmentations' made outside the step (replicas stay comparable)."""
    if kind == 0:
        return np.ascontiguousarray(1.0 - images[:, :, ::-1])
    return np.ascontiguousarray(np.roll(images, 3, axis=1) * 0.5 + 0.25)


def make_data(steps=2, seed=0):
    """Indexed batches: augmented views to train on, and the un-augmented images (which the
    clustering reads from the dataset) with their dataset indices."""
    n = steps * GLOBAL_BATCH
    images = make_images(n, seed)
    return {
        "views": (augment(images, 0),),
        "images": images,
        "indices": np.arange(n, dtype=np.int32),
        "labels": np.random.default_rng(seed).integers(0, 3, n),
    }


def state(model):
    return {
        name: keras.ops.convert_to_numpy(getattr(model, name))
        for name in (
            "pca_mean",
            "pca_projection",
            "centroids",
            "cluster_weights",
            "assignments",
            "clustering_round",
        )
    }


def expected_kmeans(model, images, clustering_round=0):
    """The epoch's k-means, recomputed from its definition: PCA-whitening, L2, seeded k-means
    of the current encoder's inference features of the un-augmented images."""
    features = extract_features(model.encoder, images, normalize=False)
    mean, projection = fit_pca(features, model.projected_dim)
    points = tf.math.l2_normalize(apply_pca(features, mean, projection), axis=1)
    seed = model.seed * 100_003 + clustering_round
    centroids, assignments = kmeans(
        points, model.num_clusters, num_iterations=model.kmeans_iterations, seed=seed
    )
    return centroids.numpy(), projection.numpy(), assignments.numpy()


def reference_loss(model, views, labels):
    """Cluster-balanced cross-entropy of every view on the given per-image labels."""
    inputs = tf.concat([tf.constant(v) for v in views], 0)
    logits = model.classifier(model.encoder(inputs, training=True)).numpy().astype(np.float64)
    labels = np.tile(labels, len(views))
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    losses = -log_softmax[np.arange(len(labels)), labels]
    weights = model.cluster_weights.numpy()[labels]
    return np.mean(weights * losses), np.mean(logits.argmax(1) == labels)


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    # The dataset-collection path warns when one pass misses indices (the battery's second
    # batch): the warning is expected in the fit and round-trip checks.
    pytestmark = pytest.mark.filterwarnings(PARTIAL_PASS)
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(state)
    # Replicas: clustering runs in the callback on the primary variables (same features, same
    # seed, same k-means) and assigns the mirrored state; each replica gathers the targets of
    # its own images, the loss is a mean of per-example weighted cross-entropies, and BatchNorm
    # is synchronised. Tolerance: the second clustering whitens features of weights that agree
    # to ~1e-7 after one step, and dividing by the square roots of the tiny encoder's small
    # eigenvalues amplifies that to ~3e-5 relative in the projection; the integer assignments
    # are compared exactly all the same.
    replica_tolerance = {"atol": 1e-5, "rtol": 1e-4}

    def check_history(self, history):
        assert set(history) == {"loss", "pseudo_label_accuracy", "probe_loss", "probe_accuracy"}
        assert len(history["loss"]) == 2  # two epochs of one step: two clusterings

    def check_restored(self, restored):
        assert isinstance(restored, DeepCluster) and restored.num_clusters == 4


# ---------------------------------------------------------------------- the pseudo-labels
def test_cluster_is_pca_whitening_l2_and_seeded_kmeans_of_the_features():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, seed=3)
    images = make_images(16)
    centroids, projection, expected = expected_kmeans(model, images)
    assignments = model.cluster(images)
    np.testing.assert_array_equal(assignments, expected)
    np.testing.assert_allclose(model.centroids.numpy(), centroids, atol=1e-6)
    np.testing.assert_allclose(model.pca_projection.numpy(), projection, atol=1e-6)
    np.testing.assert_array_equal(model.assignments.numpy(), expected)
    # Right after clustering, the nearest centroid of an image's features is its assignment.
    np.testing.assert_array_equal(model.predict_clusters(images), expected)
    counts = np.bincount(expected, minlength=4)
    weights = 16 / (np.count_nonzero(counts) * np.maximum(counts, 1))
    np.testing.assert_allclose(model.cluster_weights.numpy(), weights, rtol=1e-6, atol=1e-6)
    assert int(model.clustering_round.numpy()) == 1
    # Images stored under their own dataset indices; indices not clustered hold -1.
    order = np.array([9, 2, 15, 0, 4, 11, 7, 13])
    part = model.cluster(images[:8], indices=order)
    table = model.assignments.numpy()
    np.testing.assert_array_equal(table[order], part)
    assert np.all(np.delete(table, order) == -1)
    np.testing.assert_array_equal(model.pseudo_labels(tf.constant(order)).numpy(), part)
    np.testing.assert_array_equal(model.pseudo_labels(tf.constant([1, -1, 16])).numpy(), -1)


def per_view_labels(model, views):
    """What a per-view labelling gives: each view's own nearest centroid of the clustering."""
    labels = []
    for view in views:
        features = extract_features(model.encoder, view, normalize=False)
        points = tf.math.l2_normalize(
            apply_pca(features, model.pca_mean, model.pca_projection), axis=1
        ).numpy()
        distances = ((points[:, None] - model.centroids.numpy()[None]) ** 2).sum(-1)
        labels.append(distances.argmin(1))
    return labels


def test_two_views_of_one_image_get_the_same_target():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, pca_dim=8)
    images = make_images(16)
    model.cluster(images)
    order = np.array([5, 0, 12, 3, 9, 14, 1, 7])
    views = (augment(images[order], 0), augment(images[order], 1))
    own = per_view_labels(model, views)
    # Train the live encoder away from the clustering one: targets must not follow it.
    model.encoder.set_weights([w * 1.5 for w in model.encoder.get_weights()])
    targets = model.assignments.numpy()[order]
    terms, features = model.compute_ssl_loss(
        IndexedViews(tuple(tf.constant(v) for v in views), tf.constant(order)), training=True
    )
    loss, accuracy = reference_loss(model, views, targets)  # both views on their image's label
    np.testing.assert_allclose(float(terms["loss"]), loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(terms["pseudo_label_accuracy"]), accuracy, atol=1e-6)
    assert features.shape == (8, model.feature_dim)
    # The views' own clusters differ from their image's: per-view labels would not match.
    assert not np.array_equal(own[0], targets) and not np.array_equal(own[1], targets)
    unbalanced = make_model(probe_classes=None, pca_dim=8, balanced=False)
    unbalanced.cluster(images)
    np.testing.assert_array_equal(unbalanced.cluster_weights.numpy(), 1.0)


def test_fit_trains_every_view_on_the_epochs_kmeans_of_the_unaugmented_image():
    # Fails on a per-view labelling: the views are inverted and shifted copies of the images.
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, pca_dim=8)
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # weights stay: losses can be recomputed
    images = make_images(16)
    _, _, expected = expected_kmeans(model, images)  # the clustering at epoch 0 sees these
    order = np.random.default_rng(1).permutation(16)  # batches in another order than images
    views = (augment(images[order], 0), augment(images[order], 1))
    dataset = testing.make_dataset({"views": views, "indices": order}, GLOBAL_BATCH)
    history = model.fit(
        dataset, epochs=1, callbacks=[DeepClusterCallback(images)], verbose=0
    ).history
    np.testing.assert_array_equal(model.assignments.numpy(), expected)
    batches = [slice(0, 8), slice(8, 16)]
    losses, accuracies = zip(
        *(reference_loss(model, [v[b] for v in views], expected[order[b]]) for b in batches)
    )
    np.testing.assert_allclose(history["loss"][0], np.mean(losses), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(history["pseudo_label_accuracy"][0], np.mean(accuracies), atol=1e-6)


def test_fit_on_numpy_images_pairs_every_image_with_its_own_index():
    seen = []

    class Recording(DeepCluster):
        def unpack_batch(self, data):
            batch = data[0] if isinstance(data, (tuple, list)) else data
            seen.append((batch["images"].numpy(), batch["indices"].numpy()))
            return super().unpack_batch(data)

    keras.utils.set_random_seed(0)
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8))
    model = Recording(encoder, num_clusters=4, pca_dim=4, clustering_examples=24)
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)
    images = (make_images(24) * 255).astype(np.uint8)
    _, _, expected = expected_kmeans(model, images)
    labels = np.arange(24) % 3
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)  # shuffled by Keras
    np.testing.assert_array_equal(model.assignments.numpy(), expected)
    indices = np.concatenate([index for _, index in seen])
    assert sorted(indices.tolist()) == list(range(24)) and not np.array_equal(indices, range(24))
    for batch, index in seen:
        np.testing.assert_array_equal(batch, images[index])


def test_assignments_survive_save_load_and_weight_checkpoints(tmp_path):
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    data = make_data()
    model.fit(data["images"], batch_size=8, epochs=1, verbose=0)
    batch = IndexedViews((tf.constant(data["views"][0][:8]),), tf.constant(np.arange(8)))
    expected = float(model.compute_ssl_loss(batch, training=False)[0]["loss"])
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    weights = str(tmp_path / "model.weights.h5")  # what BackupAndRestore writes
    model.save_weights(weights)
    reloaded = make_model(probe_classes=None, seed=5)
    reloaded.load_weights(weights)
    for other in (restored, reloaded):
        for key, value in state(model).items():
            np.testing.assert_array_equal(state(other)[key], value, err_msg=key)
        assert np.all(other.assignments.numpy() >= 0)
        loss = float(other.compute_ssl_loss(batch, training=False)[0]["loss"])
        np.testing.assert_allclose(loss, expected, rtol=1e-6, atol=1e-6)
    assert restored.clustering_images is None  # data, not state: fit(images) or adapt()


def test_resumed_run_keeps_the_assignments_between_clusterings(tmp_path):
    # Clustering every 2 epochs; a run interrupted after epoch 0 resumes at epoch 1 on the
    # restored assignments (no clustering) and ends where an uninterrupted run ends.
    data = make_data()
    dataset = testing.make_dataset({k: data[k] for k in ("views", "indices")}, GLOBAL_BATCH)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    def run(callbacks, seed=0):
        keras.utils.set_random_seed(seed)
        model = make_model(probe_classes=None)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        clustering = DeepClusterCallback(data["images"], every_n_epochs=2)
        model.fit(dataset, epochs=2, callbacks=[clustering, *callbacks], verbose=0)
        return model

    reference = run([])
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        run([backup, Interrupt()])
    resumed = run([keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))], seed=7)
    assert int(resumed.clustering_round.numpy()) == 1
    np.testing.assert_array_equal(resumed.assignments.numpy(), reference.assignments.numpy())
    for actual, expected in zip(resumed.weights, reference.weights):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=1e-6, rtol=1e-6)


def test_pipeline_indices_name_each_batch_images():
    images = (make_images(20) * 255).astype(np.uint8)
    labels = np.arange(20)
    augmenter = presets.crop_flip((8, 8, 1))
    counter = EpochCounter()
    pipelines = {
        "raw": make_ssl_dataset(images, labels, batch_size=6, seed=1, indices=True),
        "views": make_ssl_dataset(
            images, labels, batch_size=6, augmenter=augmenter, seed=1, indices=True
        ),
        "epoch": make_ssl_dataset(
            images,
            labels,
            batch_size=6,
            augmenter=augmenter,
            seed=1,
            epoch_counter=counter,
            indices=True,
        ),
        "dataset": make_ssl_dataset(
            tf.data.Dataset.from_tensor_slices((images, labels)),
            batch_size=6,
            seed=1,
            indices=True,
        ),
    }
    for name, dataset in pipelines.items():
        batches = list(dataset)
        assert len(batches) == 3, name
        for batch in batches:
            index = batch["indices"].numpy()
            assert batch["indices"].dtype == tf.int32, name
            np.testing.assert_array_equal(batch["labels"].numpy(), labels[index], err_msg=name)
            if "images" in batch:
                np.testing.assert_array_equal(batch["images"].numpy(), images[index])
    assert "indices" not in make_ssl_dataset(images, batch_size=6).element_spec


# ------------------------------------------------------------------------- clustering loop
def test_same_seed_gives_the_same_clusters_and_rounds_change_the_seed():
    images = make_images(16)
    results = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        model = make_model(probe_classes=None)
        results.append(model.cluster(images))
    np.testing.assert_array_equal(results[0], results[1])
    initial = model.classifier.kernel.numpy().copy()
    model.cluster(images)  # round 2: another classifier initialisation
    assert int(model.clustering_round.numpy()) == 2
    assert not np.allclose(initial, model.classifier.kernel.numpy(), atol=1e-6)
    np.testing.assert_array_equal(model.classifier.bias.numpy(), 0.0)


@pytest.mark.filterwarnings(PARTIAL_PASS)
def test_reclustering_resets_the_classifier_optimizer_slots():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    data = make_data(steps=1)
    model.fit(testing.make_dataset(data, GLOBAL_BATCH), epochs=1, verbose=0)
    prefix = model.classifier.kernel.path.replace("/", "_")
    slots = [v for v in model.optimizer.variables if v.name.startswith(prefix)]
    assert slots and np.abs(slots[0].numpy()).max() > 0
    model.cluster(data["images"])
    assert np.abs(slots[0].numpy()).max() == 0


def test_fit_adds_the_clustering_callback_and_clusters_every_epoch():
    # Epochs, not steps: two steps per epoch, one clustering per epoch.
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    data = make_data()
    model.fit(testing.make_dataset(data, GLOBAL_BATCH), epochs=3, verbose=0)
    assert int(model.clustering_round.numpy()) == 3
    explicit = DeepClusterCallback(data["images"], every_n_epochs=2)
    model.fit(testing.make_dataset(data, GLOBAL_BATCH), epochs=3, callbacks=[explicit], verbose=0)
    assert int(model.clustering_round.numpy()) == 5  # epochs 0 and 2
    model.adapt(data["images"])  # then a dataset of views and indices is enough
    views_only = {key: data[key] for key in ("views", "indices")}
    model.fit(testing.make_dataset(views_only, GLOBAL_BATCH), epochs=1, verbose=0)
    assert int(model.clustering_round.numpy()) == 6


def _two_level_images(count, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    images = 0.15 + 0.5 * labels[:, None, None, None] + rng.random((count, 8, 8, 1)) * 0.2
    return (images * 255).astype(np.uint8), labels


def test_trains_from_the_input_pipeline_and_learns():
    keras.utils.set_random_seed(0)
    augmenter = presets.crop_flip((8, 8, 1), crop_scale=(0.5, 1.0))
    model = make_model(
        probe_classes=None, augmenter=augmenter, num_clusters=2, clustering_examples=96
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    images, labels = _two_level_images(96, seed=0)
    dataset = make_ssl_dataset(
        images, batch_size=32, augmenter=model.augmenter, seed=1, indices=True
    )
    # Every clustering re-initialises the classifier (the loss jumps back up), so the loss is
    # compared across epochs trained on one clustering.
    once = DeepClusterCallback(images, every_n_epochs=100)
    history = model.fit(dataset, epochs=6, callbacks=[once], verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0] - 0.2
    assert history["pseudo_label_accuracy"][-1] > 0.9
    # The clustering found the two levels, and the network learned to predict it.
    assignments = model.assignments.numpy()
    assert clustering_accuracy(labels, assignments) == 1.0
    logits = model.classifier(model.encoder(to_float_images(images), training=False))
    np.testing.assert_array_equal(np.argmax(logits, axis=-1), assignments)


def test_config_is_the_recipe_and_clusters_every_training_image_each_epoch():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it, and trains it as experiment.train
    # does (adapt to the training images, an indexed pipeline, the configured optimizer).
    config = testing.load_config(CONFIG)
    assert config.method == "deepcluster" and config.method_kwargs.num_clusters == 100
    assert config.method_kwargs.clustering_examples >= 60000  # all of Fashion-MNIST's train
    testing.shrink_config(config, batch_size=32)
    keras.utils.set_random_seed(0)
    model = experiment.build_model(config, (28, 28, 1))
    assert isinstance(model, DeepCluster) and model.projected_dim == 8  # pca_dim 32, 8 features
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    model.adapt(images)
    model.compile(optimizer=build_optimizer(config.optimizer, steps_per_epoch=2, epochs=2))
    dataset = make_ssl_dataset(
        images, batch_size=32, augmenter=model.augmenter, seed=0, indices=True
    )
    history = model.fit(dataset, epochs=2, verbose=0).history
    assert int(model.clustering_round.numpy()) == 2 and np.isfinite(history["loss"]).all()
    table = model.assignments.numpy()
    assert np.all(table[:64] >= 0) and np.all(table[64:] == -1)  # every training image


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_clusters": 1}, r"`num_clusters` must be an integer >= 2; received 1"),
        ({"pca_dim": 0}, r"`pca_dim` must be an integer >= 1; received 0"),
        ({"kmeans_iterations": 0}, r"`kmeans_iterations` must be an integer >= 1"),
        ({"clustering_examples": 3}, r"`clustering_examples` must be an integer >= 4"),
        ({"seed": -1}, r"`seed` must be an integer >= 0; received -1"),
        ({"kmeans_init": "kmeans"}, r"`kmeans_init` must be one of .* received 'kmeans'"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_wrong_number_of_images_to_cluster():
    model = make_model()
    with pytest.raises(ValueError, match=r"at least num_clusters=4 images to cluster; received 3"):
        model.cluster(np.zeros((3, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match=r"at most clustering_examples=16 .* received 17"):
        model.adapt(np.zeros((17, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match=r"`indices` must be 4 distinct integers in \[0, "):
        model.cluster(np.zeros((4, 8, 8, 1), np.float32), indices=[0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"`indices` must be 4 distinct integers"):
        model.cluster(np.zeros((4, 8, 8, 1), np.float32), indices=[0, 1, 2, 16])


def test_fit_refuses_input_that_cannot_carry_indices():
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    data = make_data()

    def generator():
        yield data["images"][:8]

    with pytest.raises(ValueError, match=r"must carry the dataset index .* type function"):
        model.fit(generator, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"received `x` of type list"):
        model.fit(list(data["images"]), epochs=1, verbose=0)
    no_indices = testing.make_dataset({"views": data["views"]}, GLOBAL_BATCH)
    with pytest.raises(ValueError, match=r"received a dataset whose batches hold \['views'\]"):
        model.fit(no_indices, epochs=1, verbose=0)
    views_only = testing.make_dataset(
        {key: data[key] for key in ("views", "indices")}, GLOBAL_BATCH
    )
    with pytest.raises(ValueError, match=r"a dataset without 'images' and no images from adapt"):
        model.fit(views_only, epochs=1, verbose=0)
    endless = testing.make_dataset(data, GLOBAL_BATCH).repeat()
    with pytest.raises(ValueError, match=r"endless dataset"):
        model.fit(endless, epochs=1, steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match=r"batch without them"):
        model.train_step({"views": (tf.constant(data["views"][0][:8]),)})


def test_callback_rejects_bad_input():
    with pytest.raises(ValueError, match=r"NumPy array or a tf.data.Dataset .* received list"):
        DeepClusterCallback([np.zeros((8, 8, 1))])
    with pytest.raises(ValueError, match=r"`every_n_epochs` must be an integer >= 1"):
        DeepClusterCallback(np.zeros((4, 8, 8, 1)), every_n_epochs=0)
    views = tf.data.Dataset.from_tensor_slices({"views": (np.zeros((4, 8, 8, 1)),)})
    with pytest.raises(ValueError, match=r"one without \['images', 'indices'\]"):
        DeepClusterCallback(views.batch(2))
