import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.methods.relative_patch import RelativePatchLocation
from keras_ssl.methods.step_random import new_seed, step_seed
from keras_ssl.pretext import patch_pairs

GLOBAL_BATCH = 8
IMAGE_SHAPE = (14, 14, 1)  # 3-px patches, 1-px gaps, 1 px of jitter: a 13-px grid
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "relative_patch_fashion_mnist.py"


def make_encoder(shape=IMAGE_SHAPE):
    return backbones.SmallResNet(shape, widths=(4, 8), synchronized_bn=True)


def make_model(**kwargs):
    options = {
        "patch_size": 3,
        "gap": 1,
        "jitter": 1,
        "head_hidden_dims": (8,),
        "synchronized_bn": True,
        "probe_classes": 3,
    }
    return RelativePatchLocation(make_encoder(), **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {
        "views": (rng.random((n, *IMAGE_SHAPE), dtype=np.float32),),
        "labels": rng.integers(0, 3, n),
    }


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.PretextBattery):
    # Replicas: neighbours and jitter are drawn inside the step, statelessly from (seed,
    # optimizer step) for the whole global batch; each replica keeps its own rows, so both runs
    # cut the same pairs per image. No batch-level loss term; synchronized BatchNorm in
    # backbone and head. The round trip: the optimizer step seeds the next pairs and is
    # restored with the optimizer.
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH

    def check_restored(self, restored):
        assert restored.patch_encoder.input_shape == (None, 3, 3, 1)
        assert restored.encoder.input_shape == (None, *IMAGE_SHAPE)
        assert (restored.gap, restored.jitter) == ((1, 1), (1, 1))


# ------------------------------------------------------------------ context prediction
def test_loss_is_cross_entropy_of_the_concatenated_pair_features():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, seed=5)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    (view,) = make_data(steps=1)["views"]
    labels, shifts = patch_pairs.sample_patch_pairs(
        GLOBAL_BATCH, step_seed(model, new_seed(5), True), (1, 1)
    )
    labels, shifts = np.asarray(labels), np.asarray(shifts)
    # NumPy: the centre cell of the 13-px grid starts at (14 - 11) // 2 + 3 + 1 = 5.
    centre, neighbour = [], []
    for b in range(GLOBAL_BATCH):
        dr, dc = patch_pairs.NEIGHBOURS[labels[b]]
        top, left = 5 + shifts[b, 0]
        centre.append(view[b, top : top + 3, left : left + 3])
        top, left = 5 + 4 * np.array([dr, dc]) + shifts[b, 1]
        neighbour.append(view[b, top : top + 3, left : left + 3])
    features = model.patch_encoder(np.concatenate([centre, neighbour]), training=True).numpy()
    pairs = np.concatenate([features[:GLOBAL_BATCH], features[GLOBAL_BATCH:]], axis=1)
    logits = model.classifier(pairs, training=True).numpy().astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -np.mean(log_softmax[np.arange(GLOBAL_BATCH), labels])
    terms, probe_features = model.compute_ssl_loss((tf.constant(view),), training=True)
    np.testing.assert_allclose(float(terms["loss"]), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        float(terms["pretext_accuracy"]),
        np.mean(np.argmax(logits, 1) == labels),
        rtol=1e-6,
        atol=1e-6,
    )
    np.testing.assert_allclose(probe_features, model.encoder(view), rtol=1e-5, atol=1e-6)
    model.train_on_batch({"views": (view,)})
    later = step_seed(model, new_seed(5), True)
    assert not np.array_equal(later, step_seed(None, new_seed(5), False))
    assert not np.array_equal(model.make_pairs(view, later)[2], labels)


def test_exported_encoder_is_the_trained_patch_network_on_whole_images():
    keras.utils.set_random_seed(1)
    image_encoder = backbones.SmallResNet((28, 28, 1), widths=(4, 8))
    model = RelativePatchLocation(image_encoder, head_hidden_dims=(8,))
    # The paper's proportions at 28 px.
    assert (model.patch_size, model.gap, model.jitter) == ((6, 6), (3, 3), (1, 1))
    assert model.patch_encoder.input_shape == (None, 6, 6, 1)
    for copied, original in zip(model.patch_encoder.weights, image_encoder.weights):
        np.testing.assert_array_equal(copied, original)
    assert {id(w) for w in model.encoder.weights} == {id(w) for w in model.patch_encoder.weights}
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    images = np.random.default_rng(2).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    model.fit({"images": images}, verbose=0, batch_size=8)
    twin = backbones.SmallResNet((28, 28, 1), widths=(4, 8))
    twin.set_weights(model.patch_encoder.get_weights())
    assert not np.allclose(twin.get_weights()[0], image_encoder.get_weights()[0])
    np.testing.assert_allclose(
        model.predict(images, verbose=0), twin(images / 255.0), rtol=1e-5, atol=1e-6
    )


def radial_images(count, side, seed):
    """Distance to the centre plus smooth noise: every patch's gradient points away from it."""
    y, x = np.mgrid[0:side, 0:side] - (side - 1) / 2
    radius = np.sqrt(x**2 + y**2) / side
    grids = np.random.default_rng(seed).random((count, 3, 3, 1)) * 0.3
    noise = tf.image.resize(grids, (side, side)).numpy()
    return (np.clip(radius[None, :, :, None] + noise, 0, 1) * 255).astype(np.uint8)


def test_trains_from_the_input_pipeline_and_learns():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, head_hidden_dims=(32,))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    images = radial_images(64, IMAGE_SHAPE[0], seed=0)
    dataset = make_ssl_dataset(images, batch_size=16, augmenter=model.augmenter, seed=1)
    history = model.fit(dataset, epochs=10, verbose=0).history
    # Chance: loss log 8 = 2.08, accuracy 0.125.
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0] - 0.5
    assert history["pretext_accuracy"][-1] > 0.5


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "relative_patch" and config.augment.preset == "crop_flip"
    assert config.backbone_kwargs.widths == (16, 32, 64) and config.batch_size == 128
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, RelativePatchLocation)
    assert model.patch_encoder.input_shape == (None, 6, 6, 1)


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"jitter": 2}, r"needs 15 pixels along the height.*images have 14"),
        ({"patch_size": 4, "gap": 2}, r"needs 18 pixels along the height"),
        ({"gap": -1}, r"`gap` must be a non-negative int.*received -1"),
        ({"jitter": (1, 1, 1)}, r"`jitter` must be a non-negative int.*received \(1, 1, 1\)"),
        ({"patch_size": 0}, r"patch_size.*received 0"),
        ({"head_hidden_dims": (0,)}, r"head_hidden_dims.*received \(0,\)"),
        ({"image_shape": IMAGE_SHAPE}, r"patch encoder takes inputs of size \(14, 14\)"),
        ({"image_shape": (14, 0, 1)}, r"image_shape.*received \(14, 0, 1\)"),
        ({"color_drop": True}, r"`color_drop` must be None, True \(RGB images only\).*1 channel"),
        ({"color_drop": "on"}, r"`color_drop`.*received 'on'"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_patch_encoder_with_image_shape_and_too_small_images():
    model = RelativePatchLocation(
        make_encoder((3, 3, 1)), image_shape=IMAGE_SHAPE, jitter=1, head_hidden_dims=()
    )
    assert model.patch_size == (3, 3) and model.gap == (1, 1)
    assert model.encoder.input_shape == (None, *IMAGE_SHAPE)
    with pytest.raises(ValueError, match="needs 13 pixels along the height .* have 10"):
        RelativePatchLocation(make_encoder((3, 3, 1)), image_shape=(10, 10, 1), jitter=1)


# -------------------------------------------------------------------------- colour dropping
RGB_SHAPE = (14, 14, 3)


def make_rgb_model(**kwargs):
    options = {"patch_size": 3, "gap": 1, "jitter": 1, "head_hidden_dims": (8,)}
    encoder = backbones.SmallResNet(RGB_SHAPE, widths=(4, 8), synchronized_bn=True)
    return RelativePatchLocation(encoder, synchronized_bn=True, **{**options, **kwargs})


def make_rgb_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    return {"views": (rng.random((steps * GLOBAL_BATCH, *RGB_SHAPE), dtype=np.float32),)}


def test_drop_colors_keeps_one_channel_and_fills_the_others_with_faint_noise():
    rng = np.random.default_rng(0)
    patches = rng.random((4, 6, 6, 3), dtype=np.float32)
    keep = np.array([0, 1, 2, 1], np.int32)
    noise = rng.standard_normal((4, 6, 6, 3)).astype(np.float32)
    dropped = patch_pairs.drop_colors(tf.constant(patches), tf.constant(keep), tf.constant(noise))
    for i, channel in enumerate(keep):
        kept = patches[i, ..., channel]
        np.testing.assert_array_equal(dropped[i, ..., channel], kept)
        for other in {0, 1, 2} - {channel}:
            expected = kept.mean() + noise[i, ..., other] * kept.std() / 100
            np.testing.assert_allclose(dropped[i, ..., other], expected, rtol=1e-5, atol=1e-6)


def test_every_patch_of_an_rgb_pair_keeps_its_own_channel():
    model = make_rgb_model()
    assert model.color_drop and model.get_config()["color_drop"] is True
    view = tf.constant(make_rgb_data(steps=4)["views"][0])  # 32 images, 64 patches
    seed = tf.constant([3, 4], tf.int32)
    centre, neighbour, labels = model.make_pairs(view, seed)
    plain_centre, plain_neighbour, plain_labels = make_rgb_model(color_drop=False).make_pairs(
        view, seed
    )
    np.testing.assert_array_equal(labels, plain_labels)  # same pairs, only colours change
    kept = []
    for dropped, plain in ((centre, plain_centre), (neighbour, plain_neighbour)):
        same = np.all(dropped.numpy() == plain.numpy(), axis=(1, 2))  # [n, 3]
        assert np.all(same.sum(axis=1) == 1)  # exactly one channel survives per patch
        spread = dropped.numpy().std(axis=(1, 2))
        assert np.all(spread[~same] <= spread[same].repeat(2) / 100 * 2 + 1e-7)
        kept.append(same.argmax(axis=1))
    assert len(set(kept[0])) == 3 and np.any(kept[0] != kept[1])  # random per patch


def test_grayscale_is_left_as_it_was():
    model = make_model()
    assert model.color_drop is False
    view = tf.constant(make_data()["views"][0])
    seed = tf.constant([1, 2], tf.int32)
    centre, neighbour, labels = model.make_pairs(view, seed)
    expected_labels, shifts = patch_pairs.sample_patch_pairs(len(view), seed, model.jitter)
    expected = patch_pairs.cut_patch_pairs(
        view, expected_labels, shifts, model.patch_size, model.gap
    )
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(centre, expected[0])
    np.testing.assert_array_equal(neighbour, expected[1])


def test_two_replicas_equal_one_with_color_drop():
    # Kept channels and noise are drawn for the global batch too (global_batch_draws).
    testing.check_replica_equivalence(make_rgb_model, make_rgb_data(), GLOBAL_BATCH)


def test_color_drop_survives_a_keras_round_trip(tmp_path):
    restored = testing.check_save_load(
        lambda: make_rgb_model(color_drop=False), make_rgb_data(), GLOBAL_BATCH, tmp_path
    )
    assert restored.color_drop is False
