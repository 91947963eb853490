import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.methods.jigsaw import Jigsaw
from keras_ssl.methods.step_random import new_seed, step_seed
from keras_ssl.pretext import jigsaw as puzzles

GLOBAL_BATCH = 8
IMAGE_SHAPE = (12, 12, 1)  # 4-px cells, 3-px tiles: up to 1 px of jitter per axis
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "jigsaw_fashion_mnist.py"


def make_encoder(shape=IMAGE_SHAPE):
    return backbones.SmallResNet(shape, widths=(4, 8), synchronized_bn=True)


def make_model(**kwargs):
    options = {
        "num_permutations": 10,
        "head_hidden_dims": (8,),
        "synchronized_bn": True,
        "probe_classes": 3,
    }
    return Jigsaw(make_encoder(), **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {
        "views": (rng.random((n, *IMAGE_SHAPE), dtype=np.float32),),
        "labels": rng.integers(0, 3, n),
    }


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.PretextBattery):
    # Replicas: puzzles are drawn inside the step, statelessly from (seed, optimizer step) for
    # the whole global batch; each replica keeps its own rows, so both runs draw the same
    # puzzles per image. No batch-level loss term; synchronized BatchNorm in the backbone and
    # the head. The permutation set is a constant of the config, not state.
    # The round trip: the optimizer step (the seed of the next puzzles) is restored with the
    # optimizer, so one more step after reloading draws the same puzzles and gives the same
    # weights.
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH

    def check_restored(self, restored):
        assert restored.tile_encoder.input_shape == (None, 3, 3, 1)
        assert restored.encoder.input_shape == (None, *IMAGE_SHAPE)
        np.testing.assert_array_equal(restored.permutations, make_model().permutations)


# ---------------------------------------------------------------------- Jigsaw specifics
def numpy_puzzles(view, labels, offsets, permutations):
    """Tiles cut at cell + offset (12 px: the 12-px grid starts at 0), shuffled, standardised."""
    tiles = np.stack(
        [
            np.stack(
                [
                    view[b, 4 * (j // 3) + o[0] : 4 * (j // 3) + o[0] + 3][
                        :, 4 * (j % 3) + o[1] : 4 * (j % 3) + o[1] + 3
                    ]
                    for j, o in enumerate(offsets[b])
                ]
            )[permutations[labels[b]]]
            for b in range(len(view))
        ]
    )
    mean = tiles.mean(axis=(2, 3, 4), keepdims=True)
    variance = tiles.var(axis=(2, 3, 4), keepdims=True)
    return (tiles - mean) / np.sqrt(variance + 1e-3)


def test_loss_is_cross_entropy_of_the_shuffled_tile_features():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, seed=3)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    (view,) = make_data(steps=1)["views"]
    seed = step_seed(model, new_seed(3), True)
    np.testing.assert_array_equal(seed, step_seed(None, new_seed(3), False))
    labels, offsets = puzzles.sample_jigsaw(GLOBAL_BATCH, seed, 10, (1, 1))
    labels, offsets = np.asarray(labels), np.asarray(offsets)
    tiles = numpy_puzzles(view, labels, offsets, model.permutations).astype(np.float32)
    features = model.tile_encoder(tiles.reshape(-1, 3, 3, 1), training=True).numpy()
    logits = model.classifier(features.reshape(GLOBAL_BATCH, -1), training=True).numpy()
    logits = logits.astype(np.float64)
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
    # A step later the puzzles change.
    model.train_on_batch({"views": (view,)})
    later = step_seed(model, new_seed(3), True)
    assert not np.array_equal(later, step_seed(None, new_seed(3), False))
    assert not np.array_equal(model.make_puzzles(view, later)[1], labels)


def test_exported_encoder_is_the_trained_tile_network_on_whole_images():
    keras.utils.set_random_seed(1)
    image_encoder = make_encoder()
    model = Jigsaw(image_encoder, num_permutations=10, head_hidden_dims=(8,))
    assert model.tile_size == (3, 3) and model.cell_size == (4, 4)
    assert model.tile_encoder.input_shape == (None, 3, 3, 1)
    # The tile encoder starts as a copy of the given encoder (encoder_for_patches) ...
    for copied, original in zip(model.tile_encoder.weights, image_encoder.weights):
        np.testing.assert_array_equal(copied, original)
    # ... and the exported whole-image encoder shares its variables, so it follows training.
    assert {id(w) for w in model.encoder.weights} == {id(w) for w in model.tile_encoder.weights}
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.fit({"views": make_data(steps=1)["views"]}, verbose=0, batch_size=GLOBAL_BATCH)
    twin = make_encoder()
    twin.set_weights(model.tile_encoder.get_weights())
    assert not np.allclose(twin.get_weights()[0], image_encoder.get_weights()[0])
    images = np.random.default_rng(2).integers(0, 256, (3, *IMAGE_SHAPE), dtype=np.uint8)
    np.testing.assert_allclose(
        model.predict(images, verbose=0), twin(images / 255.0), rtol=1e-5, atol=1e-6
    )


def test_default_geometry_at_28_pixels_and_min_distance():
    model = Jigsaw(backbones.SmallResNet((28, 28, 1), widths=(4,)), head_hidden_dims=())
    assert model.tile_size == (7, 7) and model.cell_size == (9, 9)
    assert model.num_permutations == 100 and model.permutations.shape == (100, 9)
    assert model.min_distance == 6
    assert model.classifier.output_dim == 100


def radial_images(count, side, seed):
    """Distance to the centre plus smooth noise: every tile's gradient points away from it."""
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
    # Chance: loss log 10 = 2.30, accuracy 0.1.
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0] - 0.5
    assert history["pretext_accuracy"][-1] > 0.4


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "jigsaw" and config.augment.preset == "crop_flip"
    assert config.backbone_kwargs.widths == (16, 32, 64) and config.batch_size == 128
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, Jigsaw) and model.tile_encoder.input_shape == (None, 7, 7, 1)


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_permutations": 1}, r"`num_permutations` must be an integer in \[2, 362880\]"),
        ({"min_hamming": 9}, r"minimal Hamming distance of \d; received min_hamming=9"),
        ({"cell_size": 5}, r"grid of cells of height 5 needs 15 pixels but the images have 12"),
        ({"tile_size": 5}, r"tile height 5 > cell height 4"),
        ({"tile_size": 0}, r"tile_size.*received 0"),
        ({"head_hidden_dims": (-1,)}, r"head_hidden_dims.*received \(-1,\)"),
        ({"image_shape": 12}, r"image_shape.*received 12"),
        (
            {"image_shape": IMAGE_SHAPE, "tile_size": 3},
            r"patch encoder takes inputs of size \(12, 12\).*\(3, 3\)",
        ),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_image_too_small_for_the_grid_raises():
    with pytest.raises(ValueError, match=r"Jigsaw tiles must fit|needs .* pixels"):
        Jigsaw(backbones.SmallResNet((2, 2, 1), widths=(4,)), cell_size=1)
    # A tile encoder with an explicit image shape.
    tile_model = Jigsaw(
        make_encoder((3, 3, 1)), image_shape=IMAGE_SHAPE, num_permutations=4, head_hidden_dims=()
    )
    assert tile_model.encoder.input_shape == (None, *IMAGE_SHAPE)
    with pytest.raises(ValueError, match="needs 12 pixels but the images have 8"):
        Jigsaw(make_encoder((3, 3, 1)), image_shape=(8, 8, 1), cell_size=4)
