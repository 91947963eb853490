import copy
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment.flip import RandomHorizontalFlip
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.layers.patch_grid import PatchLayerNormalization
from keras_ssl.losses import cpc_info_nce
from keras_ssl.losses.contrastive import step_logits
from keras_ssl.methods.cpc import CPC

GLOBAL_BATCH = 8
IMAGE_SHAPE = (12, 12, 1)  # 4-px patches, stride 2: a 5x5 grid
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "cpc_fashion_mnist.py"


def make_encoder(patch=4, synchronized_bn=True):
    return backbones.SmallResNet((patch, patch, 1), widths=(4, 8), synchronized_bn=synchronized_bn)


def make_model(**kwargs):
    options = {
        "image_shape": IMAGE_SHAPE,
        "prediction_steps": 3,  # steps 2 and 3: 4-px patches with stride 2 overlap at step 1
        "context_blocks": 1,
        "probe_classes": 3,
    }
    return CPC(make_encoder(), **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {
        "views": (rng.random((n, *IMAGE_SHAPE), dtype=np.float32),),
        "labels": rng.integers(0, 3, n),
    }


def numpy_patches(images, patch, stride, grid):
    return np.stack(
        [
            np.stack(
                [
                    images[:, r * stride : r * stride + patch, c * stride : c * stride + patch]
                    for c in range(grid)
                ],
                axis=1,
            )
            for r in range(grid)
        ],
        axis=1,
    )


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    # Replicas: each replica encodes its own images; the patch encodings z are gathered from
    # both replicas, so every prediction scores the same 8 * 25 candidates as on one device and
    # its target index is offset by the replica's first image. The patch encoder normalises
    # each patch on its own (layer normalisation), so it needs no cross-replica statistics. CPC
    # keeps no state outside its weights. The export: the exported encoder is the whole-image
    # one: patch grid -> patch encoder -> grid mean.
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH

    def check_history(self, history):
        assert set(history) == {"loss", "cpc_accuracy", "probe_loss", "probe_accuracy"}

    def check_restored(self, restored):
        assert restored.patch_encoder.input_shape == (None, 4, 4, 1)
        assert restored.encoder.input_shape == (None, *IMAGE_SHAPE)


def test_two_replicas_equal_one_with_synchronized_batch_norm():
    # patch_normalization=None keeps the backbone's synchronized BatchNorm: global statistics
    # over the patches of both replicas (moving statistics are weights and are compared too).
    testing.check_replica_equivalence(
        lambda: make_model(patch_normalization=None), make_data(), GLOBAL_BATCH
    )


# --------------------------------------------------------------------------------- loss
# cpc_info_nce and cpc_terms: tests/losses/test_predictive_coding.py.
def test_reported_loss_is_cpc_info_nce_of_the_model():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    twin = CPC.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    (view,) = make_data(steps=1)["views"]
    z = twin.grid_encoder(tf.constant(view), training=True)
    predictions = twin.predict_rows(twin.context(z))
    assert twin.first_step == 2 and len(predictions) == 2
    losses = cpc_info_nce(predictions, z, first_step=2)
    expected = np.mean([np.mean(loss) for loss in losses])  # mean over steps of step means
    hits = []
    for step, prediction in enumerate(predictions, start=2):
        logits, labels = step_logits(prediction, z, step, 0)
        hits.append(np.mean(np.argmax(logits, axis=1) == labels))
    logs = model.train_on_batch({"views": (view,)}, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logs["cpc_accuracy"], np.mean(hits), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------- model
def test_context_at_a_row_ignores_everything_below_it():
    keras.utils.set_random_seed(1)
    model = make_model()
    rng = np.random.default_rng(2)
    images = rng.random((2, *IMAGE_SHAPE)).astype(np.float32)
    z = model.grid_encoder(images, training=False)
    context = np.asarray(model.context(z))
    for r in range(5):
        # Patch row r covers image rows 2r .. 2r + 3; rows from 2r + 4 on lie in lower patches.
        changed = images.copy()
        changed[:, 2 * r + 4 :] = rng.random(changed[:, 2 * r + 4 :].shape)
        z_changed = model.grid_encoder(changed, training=False)
        new_context = np.asarray(model.context(z_changed))
        np.testing.assert_array_equal(new_context[:, : r + 1], context[:, : r + 1])
        if r < 4:
            assert not np.allclose(new_context[:, r + 1 :], context[:, r + 1 :])
        # Predictions made from rows <= r are unchanged too.
        for old, new in zip(model.predict_rows(context), model.predict_rows(new_context)):
            np.testing.assert_array_equal(np.asarray(new)[:, : r + 1], np.asarray(old)[:, : r + 1])
    # Directly on the context network: changing z below row r leaves rows <= r unchanged.
    z = rng.normal(size=(2, 5, 5, 8)).astype(np.float32)
    base = np.asarray(model.context(z))
    for r in range(4):
        changed = z.copy()
        changed[:, r + 1 :] += 1.0
        np.testing.assert_array_equal(
            np.asarray(model.context(changed))[:, : r + 1], base[:, : r + 1]
        )


def test_encoder_maps_whole_images_to_the_mean_patch_encoding():
    keras.utils.set_random_seed(2)
    model = make_model()
    assert model.encoder.input_shape == (None, *IMAGE_SHAPE)
    assert model.patch_encoder.input_shape == (None, 4, 4, 1)
    assert model.grid_size == (5, 5) and model.patch_stride == (2, 2)
    images = np.random.default_rng(3).integers(0, 256, (3, *IMAGE_SHAPE), dtype=np.uint8)
    floats = images.astype(np.float32) / 255.0
    patches = numpy_patches(floats, 4, 2, 5).reshape(-1, 4, 4, 1)
    expected = np.asarray(model.patch_encoder(patches, training=False)).reshape(3, 25, 8)
    expected = expected.mean(axis=1)
    np.testing.assert_allclose(model.encoder(floats), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-6)


def patch_encodings(model, images):
    return np.asarray(model.grid_encoder(tf.constant(images), training=True))


def test_patch_encodings_do_not_depend_on_the_other_patches_in_training():
    # CPC v2: with BatchNorm over all patches of the batch, changing one patch changes every
    # other patch's encoding in training mode (batch statistics), a path for information
    # between patches; per-patch layer normalisation (the default) closes it.
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    images = rng.random((4, *IMAGE_SHAPE)).astype(np.float32)
    changed = images.copy()
    # Pixels (0..1, 0..1) of image 0 lie in patch (0, 0) only (4-px patches, stride 2), and
    # image 3 is replaced altogether.
    changed[0, :2, :2] = rng.random((2, 2, 1))
    changed[3] = rng.random(IMAGE_SHAPE)
    untouched = np.ones((4, 5, 5), bool)
    untouched[0, 0, 0] = untouched[3] = False

    model = make_model()
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in model.patch_encoder._flatten_layers()
    )
    before, after = patch_encodings(model, images), patch_encodings(model, changed)
    np.testing.assert_allclose(after[untouched], before[untouched], rtol=1e-6, atol=1e-6)
    assert not np.allclose(after[0, 0, 0], before[0, 0, 0], atol=1e-3)
    assert not np.allclose(after[3], before[3], atol=1e-3)

    with_batch_norm = make_model(patch_normalization=None)
    before = patch_encodings(with_batch_norm, images)
    after = patch_encodings(with_batch_norm, changed)
    assert np.abs(after[untouched] - before[untouched]).max() > 1e-3


def test_patch_normalization_option():
    model = make_model()
    assert model.patch_normalization == "layer"
    assert model.get_config()["patch_normalization"] == "layer"
    norms = [
        layer for layer in model.patch_encoder.layers if isinstance(layer, PatchLayerNormalization)
    ]
    assert len(norms) == 6 and all(norm.epsilon == 1e-5 for norm in norms)  # the BatchNorms'
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization) for layer in model.patch_encoder.layers
    )
    # An encoder without BatchNorm is used as given.
    plain = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Conv2D(3, 3), keras.layers.GlobalAveragePooling2D()]
    )
    assert CPC(plain, image_shape=IMAGE_SHAPE, prediction_steps=3).patch_encoder is plain
    # None keeps the encoder as it is.
    encoder = make_encoder()
    kept = CPC(encoder, image_shape=IMAGE_SHAPE, prediction_steps=3, patch_normalization=None)
    assert kept.patch_encoder is encoder
    with pytest.raises(ValueError, match=r"patch_normalization.*received 'batch'"):
        make_model(patch_normalization="batch")


def test_normalized_patch_encoder_runs_on_whole_images():
    # Layer normalisation has no size-dependent weights: the trained patch encoder's own
    # layers apply to whole images too.
    model = make_model()
    whole = keras.models.clone_model(
        model.patch_encoder,
        input_tensors=keras.Input(IMAGE_SHAPE),
        clone_function=lambda layer: layer,
    )
    assert {id(v) for v in whole.weights} == {id(v) for v in model.patch_encoder.weights}
    images = np.random.default_rng(6).random((2, *IMAGE_SHAPE)).astype(np.float32)
    features = np.asarray(whole(images, training=True))
    assert features.shape == (2, 8) and np.all(np.isfinite(features))
    # Per-example normalisation: training and inference modes agree, batch-independent.
    np.testing.assert_allclose(whole(images, training=False), features, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(whole(images[:1], training=True), features[:1], rtol=1e-5, atol=1e-6)


def test_first_step_defaults_to_the_first_row_that_shares_no_pixels():
    # 4-px patches with stride 2: the next row overlaps by 2 px, the one after does not.
    model = make_model()
    assert model.first_step == 2
    assert [p.name for p in model.predictors] == ["predictor_2", "predictor_3"]
    assert len(make_model(first_step=1).predictors) == 3
    assert make_model(prediction_steps=1).first_step == 1  # capped at K
    assert make_model(patch_stride=4, prediction_steps=2).first_step == 1  # rows 4 px apart


def test_an_image_encoder_is_rebuilt_for_patches_with_its_weights():
    keras.utils.set_random_seed(3)
    image_encoder = backbones.SmallResNet((28, 28, 1), widths=(4, 8))
    model = CPC(image_encoder, prediction_steps=5)
    # Default geometry: a quarter of the side (7 px) with stride 3, an 8x8 grid; rows 3 below
    # are the first that share no pixels with the context row (3 * 3 >= 7).
    assert model.patch_size == (7, 7) and model.patch_stride == (3, 3)
    assert model.first_step == 3 and [p.name for p in model.predictors] == [
        "predictor_3",
        "predictor_4",
        "predictor_5",
    ]
    assert model.grid_size == (8, 8) and model.image_shape == (28, 28, 1)
    assert model.patch_encoder.input_shape == (None, 7, 7, 1)
    assert model.patch_encoder is not image_encoder
    # Every layer keeps its weights; each BatchNorm became a layer norm with its gamma and beta.
    rebuilt = {layer.name: layer for layer in model.patch_encoder.layers}
    for original in image_encoder.layers:
        if isinstance(original, keras.layers.BatchNormalization):
            norm = rebuilt[f"{original.name}_ln"]
            assert isinstance(norm, PatchLayerNormalization)
            np.testing.assert_array_equal(norm.gamma, original.gamma)
            np.testing.assert_array_equal(norm.beta, original.beta)
        else:
            for got, want in zip(rebuilt[original.name].weights, original.weights, strict=True):
                np.testing.assert_array_equal(got, want)
    kept = CPC(image_encoder, prediction_steps=5, patch_normalization=None)
    for rebuilt, original in zip(kept.patch_encoder.weights, image_encoder.weights, strict=True):
        np.testing.assert_array_equal(rebuilt, original)
    config = model.get_config()
    assert config["image_shape"] == (28, 28, 1) and config["patch_size"] == (7, 7)
    twin = CPC.from_config(copy.deepcopy(config))  # now given the patch encoder and the image shape
    assert twin.get_config() == config
    with pytest.raises(ValueError, match="Could not rebuild the image encoder"):
        flat = keras.Sequential(
            [keras.Input((12, 12, 1)), keras.layers.Flatten(), keras.layers.Dense(4)]
        )
        CPC(flat, prediction_steps=2)


def test_default_augmenter_is_one_flipped_view_and_extra_views_are_ignored():
    model = make_model()
    assert model.augmenter.num_views == 1
    (pipeline,) = model.augmenter.pipelines
    assert [type(layer) for layer in pipeline] == [RandomHorizontalFlip]
    images = np.random.default_rng(4).random((4, *IMAGE_SHAPE)).astype(np.float32)
    one, _ = model.compute_ssl_loss((tf.constant(images),), training=False)
    two, _ = model.compute_ssl_loss((tf.constant(images), tf.zeros_like(images)), training=False)
    np.testing.assert_allclose(float(two["loss"]), float(one["loss"]), rtol=1e-6, atol=1e-6)


def test_trains_from_raw_images_and_learns():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    # Smooth random images (3x3 grids upsampled): lower rows follow from upper ones.
    grids = np.random.default_rng(0).random((64, 3, 3, 1))
    images = tf.cast(tf.image.resize(grids, IMAGE_SHAPE[:2]) * 255, tf.uint8).numpy()
    dataset = make_ssl_dataset(images, batch_size=16, augmenter=model.augmenter, seed=1)
    history = model.fit(dataset, epochs=24, verbose=0).history
    # Every prediction picks among 16 images x 25 patches = 400 candidates: a loss of log(400)
    # and an accuracy of 1/400 are chance. Measured: 6.44 -> 4.70, accuracy 0.003 -> 0.029.
    assert history["loss"][-1] < history["loss"][0] - 1.0
    assert history["loss"][-1] < np.log(400) - 0.8
    assert history["cpc_accuracy"][-1] > 5 / 400


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "cpc"
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, CPC)
    assert model.grid_size == (6, 6) and model.patch_encoder.input_shape == (None, 8, 8, 1)


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prediction_steps": 5}, r"prediction_steps=5 for a grid of 5 rows.*<= 4"),
        ({"prediction_steps": 0}, "prediction_steps.*an integer >= 1; received 0"),
        ({"first_step": 0}, "first_step.*an integer >= 1; received 0"),
        ({"first_step": 4}, "received first_step=4, prediction_steps=3"),
        ({"patch_stride": 0}, "patch_stride.*received 0"),
        ({"patch_stride": -2}, "patch_stride.*received -2"),
        ({"patch_size": 5}, r"patch_size.*5 does not match the patch encoder's input size"),
        ({"grid_size": (6, 5)}, "grid of 6 patches along the height needs 14 pixels"),
        ({"image_shape": (3, 3, 1)}, "Patches of height 4 do not fit in images of height 3"),
        ({"image_shape": (12, 12, 3)}, "has 3 channels but the patch encoder takes 1"),
        ({"image_shape": (12, 0, 1)}, r"image_shape.*received \(12, 0, 1\)"),
        ({"context_dim": 0}, "context_dim.*received 0"),
        ({"context_blocks": -1}, "context_blocks.*received -1"),
        ({"context_kernel_size": 2}, "kernel_size.*odd.*received 2"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_image_encoder_with_a_grid_too_large_raises():
    encoder = backbones.SmallResNet((12, 12, 1), widths=(4,))
    with pytest.raises(ValueError, match="Patches of height 16 do not fit in images of height 12"):
        CPC(encoder, patch_size=16)
    with pytest.raises(ValueError, match=r"patch_size.*received 0"):
        CPC(encoder, patch_size=0)
    # 12 px, default 3-px patches with stride 1: 10 rows, so 10 steps are too many.
    with pytest.raises(ValueError, match="prediction_steps=10 for a grid of 10 rows"):
        CPC(encoder, prediction_steps=10)
    with pytest.raises(ValueError, match="keras.Model"):
        CPC(lambda x: x)
