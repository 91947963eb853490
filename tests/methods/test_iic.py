import math
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment import presets
from keras_ssl.callbacks import ClusteringProbe
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.evaluation.clustering import clustering_accuracy
from keras_ssl.losses.mutual_information import iic_loss
from keras_ssl.methods.iic import IIC

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "iic_fashion_mnist.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {
        "num_clusters": 3,
        "overclustering_clusters": 5,
        "num_heads": 2,
        "probe_classes": 3,
    }
    return IIC(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    views = tuple(rng.random((n, 8, 8, 1), dtype=np.float32) for _ in range(2))
    return {"views": views, "labels": rng.integers(0, 3, n)}


def state(model):
    return {"head_losses": keras.ops.convert_to_numpy(model.head_losses)}


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    # Replicas: the joint distribution is summed over replicas (all-reduce) before the loss,
    # so every replica holds the global-batch loss; BatchNorm is synchronised. The running
    # sub-head losses (state) are global values, the same on every replica.
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(state)

    def check_history(self, history):
        assert set(history) == {"loss", "iic", "overclustering", "probe_loss", "probe_accuracy"}
        for values in (history["iic"], history["overclustering"]):
            assert all(-math.log(5) <= v <= 1e-6 for v in values)

    def check_restored(self, restored):
        assert isinstance(restored, IIC) and restored.overclustering_clusters == 5


# --------------------------------------------------------------------------- IIC specifics
def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_loss_is_the_mean_sub_head_iic_plus_overclustering():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, overclustering_weight=0.5)
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    features = model.encoder(tf.concat(views, 0), training=True).numpy()
    rng = np.random.default_rng(0)
    for head in (model.cluster_head, model.overclustering_head):
        # Confident outputs that differ between images: losses far from 0.
        kernel = rng.normal(size=head.kernel.shape).astype(np.float32) * 10
        head.kernel.assign(kernel)
        head.bias.assign(-features.mean(0) @ kernel)
    n = GLOBAL_BATCH
    expected = {}
    for name, head, clusters in (
        ("iic", model.cluster_head, 3),
        ("overclustering", model.overclustering_head, 5),
    ):
        kernel, bias = (w.numpy() for w in head.weights)
        # Sub-head h owns output columns [h * clusters, (h + 1) * clusters).
        logits = (features @ kernel + bias).reshape(2 * n, 2, clusters)
        probabilities = _softmax(logits)
        per_head = [float(iic_loss(probabilities[:n, h], probabilities[n:, h])) for h in range(2)]
        expected[name] = np.mean(per_head)
        if name == "iic":
            main_heads = per_head
    terms, out_features, updates = model.compute_ssl_loss(views, training=True)
    assert float(terms["iic"]) < -0.05 and float(terms["overclustering"]) < -0.05
    np.testing.assert_allclose(float(terms["iic"]), expected["iic"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        float(terms["overclustering"]), expected["overclustering"], rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        float(terms["loss"]),
        expected["iic"] + 0.5 * expected["overclustering"],
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(updates["head_losses"], main_heads, rtol=1e-5, atol=1e-5)
    assert out_features.shape == (n, model.feature_dim)


def test_without_overclustering_head_the_loss_is_the_main_head():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, overclustering_clusters=None)
    assert model.overclustering_head is None
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    terms, *_ = model.compute_ssl_loss(views, training=True)
    assert float(terms["overclustering"]) == 0.0
    assert float(terms["loss"]) == float(terms["iic"])


def test_head_losses_follow_a_running_mean_and_pick_the_best_head():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, head_loss_momentum=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # no learning: steps are identical
    data = make_data(steps=1)
    batch = {"views": tuple(tf.constant(v) for v in data["views"])}
    first = model.compute_ssl_loss(batch["views"], training=True)[2]["head_losses"].numpy()
    model.train_on_batch(batch)
    np.testing.assert_allclose(
        model.head_losses.numpy(), first, rtol=1e-6, atol=1e-6
    )  # starts at step 1
    model.head_losses.assign([5.0, -5.0])
    model.train_on_batch(batch)
    np.testing.assert_allclose(
        model.head_losses.numpy(), 0.5 * np.array([5.0, -5.0]) + 0.5 * first, rtol=1e-5, atol=1e-5
    )
    assert model.best_head == 1
    model.head_losses.assign([-1.0, 0.0])
    assert model.best_head == 0


def test_predict_clusters_uses_the_best_sub_head():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    images = (np.random.default_rng(1).random((10, 8, 8, 1)) * 255).astype(np.uint8)
    features = model(images).numpy()
    kernel, bias = (w.numpy() for w in model.cluster_head.weights)
    probabilities = _softmax((features @ kernel + bias).reshape(10, 2, 3))
    for head in (0, 1):
        np.testing.assert_allclose(
            model.cluster_probabilities(images, head=head, batch_size=4),
            probabilities[:, head],
            rtol=1e-5,
            atol=1e-6,
        )
    model.head_losses.assign([0.0, -1.0])
    np.testing.assert_array_equal(model.predict_clusters(images), probabilities[:, 1].argmax(-1))
    with pytest.raises(ValueError, match=r"`head` must be a sub-head index in \[0, 2\)"):
        model.cluster_probabilities(images, head=2)


def _two_level_images(count, seed):
    """Two classes of noisy 8x8 images: dark and bright."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    images = 0.15 + 0.5 * labels[:, None, None, None] + rng.random((count, 8, 8, 1)) * 0.2
    return (images * 255).astype(np.uint8), labels


def test_trains_from_the_input_pipeline_learns_and_clusters():
    # The small encoder's global pooling cannot tell images apart by where a pattern sits
    # (and aliases period-2 stripes), so the toy classes differ in brightness.
    keras.utils.set_random_seed(0)
    augmenter = presets.crop_flip((8, 8, 1), crop_scale=(0.5, 1.0), num_views=2)
    model = make_model(
        probe_classes=None, augmenter=augmenter, num_clusters=2, overclustering_clusters=4
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    images, labels = _two_level_images(96, seed=0)
    dataset = make_ssl_dataset(images, batch_size=32, augmenter=model.augmenter, seed=1)
    probe = ClusteringProbe(images, labels, every_n_epochs=4)
    history = model.fit(dataset, epochs=8, callbacks=[probe], verbose=0).history
    losses = history["iic"]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] - 0.2
    accuracy = history["clustering_accuracy"]
    assert np.isnan(accuracy[0]) and sorted(probe.results) == [4, 8]
    np.testing.assert_allclose(
        accuracy[-1],
        clustering_accuracy(labels, model.predict_clusters(images)),
        rtol=1e-6,
        atol=1e-6,
    )
    assert accuracy[-1] == 1.0  # the two classes are found without labels


def test_clustering_probe_rejects_models_without_predict_clusters():
    from keras_ssl.methods.simsiam import SimSiam

    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8))
    model = SimSiam(encoder, projection_hidden_dim=8, projection_dim=8, prediction_hidden_dim=4)
    model.compile(optimizer="sgd")
    images, labels = _two_level_images(16, seed=0)
    with pytest.raises(ValueError, match="needs a model with a `predict_clusters"):
        model.fit(
            make_ssl_dataset(images, batch_size=8, augmenter=model.augmenter, seed=0),
            epochs=1,
            callbacks=[ClusteringProbe(images, labels)],
            verbose=0,
        )


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "iic" and config.optimizer.name == "adam"
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, IIC) and model.overclustering_clusters == 50
    assert model.predict_clusters(np.zeros((3, 28, 28, 1), np.uint8)).shape == (3,)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_clusters": 1}, r"`num_clusters` must be an integer >= 2; received 1"),
        ({"num_clusters": 3.0}, r"`num_clusters` must be an integer >= 2; received 3.0"),
        ({"overclustering_clusters": 1}, r"`overclustering_clusters` must be an integer >= 2"),
        ({"num_heads": 0}, r"`num_heads` must be an integer >= 1; received 0"),
        (
            {"overclustering_weight": -1.0},
            r"`overclustering_weight` must be a number >= 0; received -1",
        ),
        ({"head_loss_momentum": 1.0}, r"`head_loss_momentum` must be .* \[0, 1\); received 1.0"),
        ({"epsilon": 0.0}, r"`epsilon` must be a number in \(0, 1\); received 0.0"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_three_views_are_rejected():
    model = make_model()
    views = (tf.zeros((2, 8, 8, 1)),) * 3
    with pytest.raises(ValueError, match="exactly 2 views per image .* received 3"):
        model.compute_ssl_loss(views, training=False)
