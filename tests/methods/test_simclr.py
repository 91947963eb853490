import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, losses, testing
from keras_ssl.augment import presets
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.methods import SimCLR

GLOBAL_BATCH = 8


def make_model(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4, 8), synchronized_bn=True)
    options = {"projection_dim": 8, "synchronized_bn": True, "probe_classes": 3}
    return SimCLR(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    views = tuple(rng.random((n, 8, 8, 1), dtype=np.float32) for _ in range(2))
    return {"views": views, "labels": rng.integers(0, 3, n)}


class TestBattery(testing.MethodBattery):
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH


def test_reported_loss_is_nt_xent_of_the_projections():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    twin = SimCLR.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    data = make_data(steps=1)
    views = tuple(tf.constant(v) for v in data["views"])
    z = twin.projector(twin.encoder(tf.concat(views, 0), training=True), training=True)
    expected = np.mean(losses.nt_xent(z[:GLOBAL_BATCH], z[GLOBAL_BATCH:], twin.temperature))
    logs = model.train_on_batch({"views": views}, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-5)


def test_trains_from_raw_uint8_images_with_in_step_augmentation():
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizer="adam")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 3, 32)
    history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0).history
    assert set(history) == {"loss", "probe_loss", "probe_accuracy"}
    assert np.isfinite(history["loss"][0]) and history["loss"][0] > 0
    unlabeled = tf.data.Dataset.from_tensor_slices(images).batch(8, drop_remainder=True)
    history = model.fit(unlabeled, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])


def test_trains_from_the_input_pipeline_and_learns():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, augmenter=presets.simclr((8, 8, 1), crop_scale=(0.5, 1)))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    # Smooth random images (2x2 grids upsampled) stay recognisable under crops and jitter.
    grids = np.random.default_rng(0).random((64, 2, 2, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    dataset = make_ssl_dataset(images, batch_size=16, augmenter=model.augmenter, seed=1)
    history = model.fit(dataset, epochs=15, verbose=0).history
    # NT-Xent starts near log(2N - 1) for random projections and must go down.
    assert history["loss"][0] == pytest.approx(np.log(31), abs=0.6)
    assert history["loss"][-1] < history["loss"][0] - 0.3


def test_predict_returns_encoder_features():
    model = make_model()
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    expected = model.encoder(images.astype(np.float32) / 255.0, training=False)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-6)
    pairs = tf.data.Dataset.from_tensor_slices((images, np.arange(5))).batch(2)
    np.testing.assert_allclose(model.predict(pairs, verbose=0), expected, rtol=1e-5, atol=1e-6)
    dicts = tf.data.Dataset.from_tensor_slices({"images": images}).batch(5)
    np.testing.assert_allclose(model.predict(dicts, verbose=0), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((8, 8, 8), np.uint8), "rank 4"),
        (np.zeros((8, 8, 8, 3), np.uint8), "channels does not match"),
        (np.zeros((8, 6, 8, 1), np.uint8), "height does not match"),
        (np.array([[[["a"]] * 8] * 8] * 8), "numeric"),
    ],
)
def test_bad_images_raise(images, match):
    model = make_model()
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=match):
        model.fit(images, batch_size=8, epochs=1, verbose=0)


def test_batch_not_divisible_by_replicas_raises():
    with testing.two_replica_strategy().scope():
        model = make_model()
        model.compile(optimizer="adam")
    data = make_data(steps=1)
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(5, drop_remainder=True)
    with pytest.raises(ValueError, match="batch_size=5 for 2 replicas"):
        model.fit(dataset, epochs=1, verbose=0)
    unknown = tf.data.Dataset.from_tensor_slices(data).batch(4)
    with pytest.raises(ValueError, match="drop_remainder=True"):
        model.fit(unknown, epochs=1, verbose=0)


def test_batch_of_one_is_rejected():
    model = make_model(probe_classes=None)
    model.compile(optimizer="sgd")
    single = tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 1), np.uint8)).batch(
        1, drop_remainder=True
    )
    with pytest.raises(ValueError, match="at least 2 images"):
        model.fit(single, epochs=1, verbose=0)


def test_constructor_errors():
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,))
    with pytest.raises(ValueError, match="temperature"):
        SimCLR(encoder, temperature=-1)
    with pytest.raises(ValueError, match="probe_classes"):
        SimCLR(encoder, probe_classes=1)
    maps = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match="pooled features"):
        SimCLR(maps)
    with pytest.raises(ValueError, match="keras.Model"):
        SimCLR(lambda x: x)


def test_three_views_are_rejected():
    model = make_model()
    views = tuple(tf.zeros((4, 8, 8, 1)) for _ in range(3))
    with pytest.raises(ValueError, match="exactly 2 views"):
        model.compute_ssl_loss(views, training=False)
