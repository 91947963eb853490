import importlib.util
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, methods, testing
from keras_ssl.augment import presets
from keras_ssl.clustering import apply_pca, fit_pca, kmeans
from keras_ssl.datasets import fashion_mnist
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.evaluation import extract_features
from keras_ssl.evaluation.clustering import clustering_accuracy
from keras_ssl.methods.deepcluster import DeepCluster, DeepClusterCallback

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "deepcluster_fashion_mnist.py"


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


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {"views": (rng.random((n, 8, 8, 1), dtype=np.float32),), "labels": rng.integers(0, 3, n)}


def state(model):
    values = {
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
    for index, weight in enumerate(model.assignment_encoder.weights):
        values[f"assignment_encoder_{index}"] = keras.ops.convert_to_numpy(weight)
    return values


# ------------------------------------------------------------------------------ battery
def test_fit_updates_weights():
    history = testing.check_fit_updates(make_model, make_data(), GLOBAL_BATCH)
    assert set(history) == {"loss", "pseudo_label_accuracy", "probe_loss", "probe_accuracy"}


def test_two_replicas_equal_one():
    # Clustering runs in the callback on the primary variables (same features, same seed,
    # same k-means) and assigns the mirrored state; the step's loss is a mean of per-example
    # weighted cross-entropies, and BatchNorm is synchronised. Tolerance: the second
    # clustering whitens features of weights that agree to ~1e-7 after one step, and dividing
    # by the square roots of the tiny encoder's small eigenvalues amplifies that to ~3e-5
    # relative in the projection; the integer assignments are compared exactly all the same.
    single, _ = testing.check_replica_equivalence(
        make_model, make_data(), GLOBAL_BATCH, state_fn=state, atol=1e-5, rtol=1e-4
    )
    assert len(single["loss"]) == 2


def test_xla_step_matches_plain_step():
    testing.check_xla_step(make_model, make_data(), GLOBAL_BATCH)


def test_keras_round_trip(tmp_path):
    restored = testing.check_save_load(
        make_model, make_data(), GLOBAL_BATCH, tmp_path, state_fn=state
    )
    assert isinstance(restored, DeepCluster) and restored.num_clusters == 4


def test_export_serves_in_fresh_process(tmp_path):
    testing.check_export(make_model, make_data(steps=1), GLOBAL_BATCH, tmp_path)


# ---------------------------------------------------------------------- DeepCluster specifics
def test_cluster_is_pca_whitening_l2_and_seeded_kmeans_of_the_features():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, seed=3)
    images = make_data()["views"][0]
    assignments = model.cluster(images)
    features = extract_features(model.encoder, images, normalize=False)
    mean, projection = fit_pca(features, 4)
    points = tf.math.l2_normalize(apply_pca(features, mean, projection), axis=1)
    centroids, expected = kmeans(points, 4, num_iterations=5, seed=3 * 100_003)
    np.testing.assert_array_equal(assignments, expected.numpy())
    np.testing.assert_allclose(model.centroids.numpy(), centroids.numpy(), atol=1e-6)
    np.testing.assert_allclose(model.pca_projection.numpy(), projection.numpy(), atol=1e-6)
    np.testing.assert_array_equal(model.assignments.numpy(), expected.numpy())
    # The frozen copy labels the clustered images exactly as k-means did.
    np.testing.assert_array_equal(model.predict_clusters(images), expected.numpy())
    counts = np.bincount(expected.numpy(), minlength=4)
    weights = 16 / (np.count_nonzero(counts) * np.maximum(counts, 1))
    np.testing.assert_allclose(model.cluster_weights.numpy(), weights, rtol=1e-6)
    assert int(model.clustering_round.numpy()) == 1


def test_same_seed_gives_the_same_clusters_and_rounds_change_the_seed():
    images = make_data()["views"][0]
    results = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        model = make_model(probe_classes=None)
        results.append(model.cluster(images))
    np.testing.assert_array_equal(results[0], results[1])
    initial = model.classifier.kernel.numpy().copy()
    model.cluster(images)  # round 2: another classifier initialisation
    assert int(model.clustering_round.numpy()) == 2
    assert not np.allclose(initial, model.classifier.kernel.numpy())
    np.testing.assert_array_equal(model.classifier.bias.numpy(), 0.0)


def test_loss_is_the_balanced_cross_entropy_of_the_frozen_pseudo_labels():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, pca_dim=8)
    images = make_data()["views"][0]
    model.cluster(images)
    # Train the live encoder away from the frozen copy: labels must not follow it.
    model.encoder.set_weights([w * 1.5 for w in model.encoder.get_weights()])
    views = (tf.constant(images[:8]),)
    labels = model.pseudo_labels(views[0]).numpy()
    np.testing.assert_array_equal(labels, model.assignments.numpy()[:8])
    logits = model.classifier(model.encoder(views[0], training=True)).numpy()
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    losses = -log_softmax[np.arange(8), labels]
    weights = model.cluster_weights.numpy()[labels]
    terms, features = model.compute_ssl_loss(views, training=True)
    np.testing.assert_allclose(float(terms["loss"]), np.mean(weights * losses), rtol=1e-5)
    np.testing.assert_allclose(
        float(terms["pseudo_label_accuracy"]), np.mean(logits.argmax(1) == labels)
    )
    assert features.shape == (8, model.feature_dim)
    unbalanced = make_model(probe_classes=None, pca_dim=8, balanced=False)
    unbalanced.cluster(images)
    np.testing.assert_array_equal(unbalanced.cluster_weights.numpy(), 1.0)


def test_reclustering_resets_the_classifier_optimizer_slots():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    data = make_data(steps=1)
    model.fit(testing.make_dataset(data, GLOBAL_BATCH), epochs=1, verbose=0)
    prefix = model.classifier.kernel.path.replace("/", "_")
    slots = [v for v in model.optimizer.variables if v.name.startswith(prefix)]
    assert slots and np.abs(slots[0].numpy()).max() > 0
    model.cluster(data["views"][0])
    assert np.abs(slots[0].numpy()).max() == 0


def test_fit_adds_the_clustering_callback_and_clusters_every_epoch():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    model.fit(testing.make_dataset(make_data(), GLOBAL_BATCH), epochs=3, verbose=0)
    assert int(model.clustering_round.numpy()) == 3
    explicit = DeepClusterCallback(make_data()["views"][0], every_n_epochs=2)
    model.fit(
        testing.make_dataset(make_data(), GLOBAL_BATCH), epochs=3, callbacks=[explicit], verbose=0
    )
    assert int(model.clustering_round.numpy()) == 5  # epochs 0 and 2


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
    dataset = make_ssl_dataset(images, batch_size=32, augmenter=model.augmenter, seed=1)
    # Every clustering re-initialises the classifier (the loss jumps back up), so the loss is
    # compared across epochs trained on one clustering.
    once = DeepClusterCallback(images, every_n_epochs=100)
    history = model.fit(dataset, epochs=6, callbacks=[once], verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0] - 0.2
    assert history["pseudo_label_accuracy"][-1] > 0.9
    assert clustering_accuracy(labels, model.predict_clusters(images)) == 1.0


def test_trains_from_its_config(tmp_path, monkeypatch):
    monkeypatch.setitem(methods.REGISTRY, "deepcluster", DeepCluster)
    spec = importlib.util.spec_from_file_location(CONFIG.stem, CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    assert config.method == "deepcluster" and config.method_kwargs.num_clusters == 100
    config.data.data_dir = str(fashion_mnist.EMBEDDED_DIR)
    config.data.train_examples = 256
    config.data.probe_train_examples = 200
    config.data.probe_test_examples = 50
    config.backbone_kwargs = {"widths": (4, 8)}
    config.method_kwargs.num_clusters = 20
    config.method_kwargs.clustering_examples = 256
    config.batch_size = 64
    config.epochs = 2
    config.precision = "float32"
    config.probes.linear_epochs = 1
    config.probes.collapse_every_epochs = 0
    config.export = False
    model, history = experiment.train(config, str(tmp_path), verbose=0)
    assert isinstance(model, DeepCluster) and model.projected_dim == 8
    assert int(model.clustering_round.numpy()) == 2
    assert np.isfinite(history["loss"]).all()
    assert 0 <= history["knn_accuracy"][-1] <= 1
    assert np.all(model.assignments.numpy() >= 0)


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


def test_too_few_images_to_cluster():
    model = make_model()
    with pytest.raises(ValueError, match=r"at least num_clusters=4 images to cluster; received 3"):
        model.cluster(np.zeros((3, 8, 8, 1), np.float32))


def test_callback_rejects_bad_input():
    with pytest.raises(ValueError, match=r"NumPy array or a tf.data.Dataset; received list"):
        DeepClusterCallback([np.zeros((8, 8, 1))])
    with pytest.raises(ValueError, match=r"`every_n_epochs` must be an integer >= 1"):
        DeepClusterCallback(np.zeros((4, 8, 8, 1)), every_n_epochs=0)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_step_is_close_to_float32(policy):
    testing.check_mixed_precision(make_model, make_data(steps=1), GLOBAL_BATCH, policy)
