import importlib.util
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, methods, testing
from keras_ssl.backbones.vit import ViT, ViTParts
from keras_ssl.layers.patch_masking import patchify
from keras_ssl.losses.masked_patches import masked_patch_loss
from keras_ssl.methods.mae import MAE
from keras_ssl.methods.step_random import step_seed

GLOBAL_BATCH = 8
ROOT = pathlib.Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "mae_fashion_mnist.py"
EXAMPLE = ROOT / "examples" / "mae_reconstruction.py"


def make_encoder(image_shape=(8, 8, 1), patch_size=2):
    return ViT(image_shape, patch_size=patch_size, dim=8, depth=1, num_heads=2)


def make_model(image_shape=(8, 8, 1), patch_size=2, **kwargs):
    options = {
        "decoder_dim": 8,
        "decoder_depth": 1,
        "decoder_num_heads": 2,
        "probe_classes": 3,
        "seed": 1,
    }
    return MAE(make_encoder(image_shape, patch_size), **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {"views": (rng.random((n, 8, 8, 1), dtype=np.float32),), "labels": rng.integers(0, 3, n)}


def state(model):
    return {"mask_seed": keras.ops.convert_to_numpy(model.mask_seed)}


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.MethodBattery):
    # Fit: every weight moves: the whole ViT (patch embedding, class token, position
    # embeddings, blocks, final norm), the decoder and its mask token, and the probe.
    # Replicas: the mask noise is drawn for the global batch from the step's stateless seed and
    # sliced per replica, and the loss is a mean of per-example terms: 2 replicas equal 1
    # (every weight, the mask seed and each step's loss).
    # XLA: static shapes (4 of the 16 patches visible in every image) and random bits that XLA
    # and TensorFlow draw identically: the compiled step gives the same masks.
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(state)

    def check_history(self, history):
        assert set(history) == {"loss", "probe_loss", "probe_accuracy"}

    def check_restored(self, restored):
        assert isinstance(restored, MAE) and restored.mask_ratio == 0.75
        assert restored.decoder.depth == 1 and restored.num_visible == 4


# ---------------------------------------------------------------------- MAE specifics
def test_vit_parts_reproduce_the_encoder_and_run_on_fewer_tokens():
    keras.utils.set_random_seed(0)
    encoder = make_encoder()
    parts = ViTParts(encoder)
    images = tf.constant(make_data(steps=1)["views"][0])
    embedding = encoder.get_layer("patch_embedding")
    tokens = tf.concat([parts.class_tokens(GLOBAL_BATCH), parts.embed(images)], axis=1)
    np.testing.assert_allclose(tokens.numpy(), embedding(images).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        parts.encode(tokens)[:, 0].numpy(), encoder(images).numpy(), rtol=1e-5, atol=1e-5
    )
    assert parts.encode(tokens[:, :5]).shape == (GLOBAL_BATCH, 5, 8)
    shared = {id(w) for w in encoder.weights}
    assert parts.blocks.weights and all(id(w) in shared for w in parts.blocks.weights)
    with pytest.raises(ValueError, match="Expected a keras_ssl ViT"):
        ViTParts(backbones.SmallResNet((8, 8, 1), widths=(4,)))


def test_masks_are_random_per_image_and_per_step_and_fixed_by_the_seed():
    model = make_model()
    seed0 = step_seed(model, model.mask_seed, training=False)
    ids_keep, mask, _ = model.make_masks(GLOBAL_BATCH, seed0)
    mask = mask.numpy()
    assert ids_keep.shape == (GLOBAL_BATCH, 4)
    np.testing.assert_array_equal(mask.sum(1), np.full(GLOBAL_BATCH, 12.0))  # 75% of 16
    assert len({tuple(row) for row in mask}) > 1  # per-image masks
    again = model.make_masks(GLOBAL_BATCH, seed0)[1].numpy()
    np.testing.assert_array_equal(again, mask)
    model.compile(optimizer="sgd")
    model.optimizer.iterations.assign(3)
    later = model.make_masks(GLOBAL_BATCH, step_seed(model, model.mask_seed, True))[1].numpy()
    assert not np.array_equal(later, mask)  # a new mask every step
    other = make_model(seed=2)
    assert not np.array_equal(
        other.make_masks(GLOBAL_BATCH, step_seed(other, other.mask_seed, False))[1].numpy(), mask
    )


def test_the_encoder_sees_only_the_visible_patches():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    images = make_data(steps=1)["views"][0]
    ids_keep, mask, _ = model.make_masks(GLOBAL_BATCH, tf.constant([5, 6]))
    encoded = model.encode_visible(tf.constant(images), ids_keep, False).numpy()
    assert encoded.shape == (GLOBAL_BATCH, 1 + 4, 8)
    pixel_mask = np.repeat(np.repeat(mask.numpy().reshape(-1, 4, 4), 2, 1), 2, 2)[..., None]
    scrambled = np.where(pixel_mask == 1, 1.0 - images, images).astype(np.float32)
    np.testing.assert_allclose(
        model.encode_visible(tf.constant(scrambled), ids_keep, False).numpy(),
        encoded,
        rtol=1e-6,
        atol=1e-6,
    )
    changed = np.where(pixel_mask == 0, 1.0 - images, images).astype(np.float32)
    assert not np.allclose(
        model.encode_visible(tf.constant(changed), ids_keep, False).numpy(), encoded, atol=1e-3
    )


def test_with_nothing_masked_the_class_token_is_the_encoders_feature():
    # Self-attention is permutation-equivariant once position embeddings are added, so the
    # shuffled full sequence gives the unmasked encoder's class token.
    keras.utils.set_random_seed(0)
    model = make_model(mask_ratio=0.0)
    images = tf.constant(make_data(steps=1)["views"][0])
    ids_keep, _, _ = model.make_masks(GLOBAL_BATCH, tf.constant([1, 2]))
    assert ids_keep.shape == (GLOBAL_BATCH, 16)
    encoded = model.encode_visible(images, ids_keep, False)
    np.testing.assert_allclose(
        encoded[:, 0].numpy(), model.encoder(images).numpy(), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(model(images).numpy(), model.encoder(images).numpy(), atol=0)


def test_loss_is_the_masked_normalised_mse_of_the_decoders_predictions():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    images = tf.constant(make_data(steps=1)["views"][0])
    terms, features = model.compute_ssl_loss((images,), training=False)
    ids_keep, mask, ids_restore = model.make_masks(
        GLOBAL_BATCH, step_seed(model, model.mask_seed, False)
    )
    encoded = model.encode_visible(images, ids_keep, False)
    predictions = model.decoder(encoded, ids_restore).numpy()
    # masked_patch_loss is checked against NumPy in tests/losses/test_masked_patches.py.
    expected = masked_patch_loss(patchify(images, 2), predictions, mask).numpy().mean()
    np.testing.assert_allclose(float(terms["loss"]), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features.numpy(), encoded[:, 0].numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="MAE uses exactly 1 view"):
        model.compute_ssl_loss((images, images), training=False)


def test_probe_features_are_the_full_unmasked_encoder():
    keras.utils.set_random_seed(0)
    model = make_model()
    images = tf.constant(make_data(steps=1)["views"][0])
    _, features = model.compute_ssl_loss((images,), training=True)
    np.testing.assert_allclose(
        features.numpy(), model.encoder(images).numpy(), rtol=1e-6, atol=1e-6
    )


def test_reconstruct_keeps_visible_pixels_and_error_is_the_eval_loss():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    images = make_data(steps=1)["views"][0]
    masks, predictions, pasted = model.reconstruct(images, seed=(0, 0))
    assert masks.shape == (GLOBAL_BATCH, 8, 8, 1)
    np.testing.assert_allclose(masks.mean(), 0.25, rtol=0, atol=1e-7)
    np.testing.assert_allclose(pasted * masks, images * masks, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pasted * (1 - masks), predictions * (1 - masks), atol=1e-6)
    error = model.reconstruction_error(images, batch_size=GLOBAL_BATCH, seed=0)
    predicted, mask, _ = model.predict_patches(tf.constant(images), tf.constant([0, 0]), False)
    expected = masked_patch_loss(patchify(images, 2), predicted, mask).numpy()
    np.testing.assert_allclose(error, expected.mean(), rtol=1e-5, atol=1e-6)


def test_trains_and_learns_on_smooth_images():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, norm_pix_loss=False)
    model.compile(optimizer=keras.optimizers.AdamW(3e-3, beta_2=0.95, weight_decay=0.05))
    grids = np.random.default_rng(0).random((64, 2, 2, 1))
    images = tf.cast(tf.image.resize(grids, (8, 8)) * 255, tf.uint8).numpy()
    history = model.fit(images, batch_size=16, epochs=12, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < 0.5 * history["loss"][0]


def test_default_augmentation_is_a_crop_of_area_0_2_to_1_and_a_flip():
    model = make_model()
    (pipeline,) = model.augmenter.pipelines
    crop, flip = pipeline
    assert tuple(crop.scale) == (0.2, 1.0)
    assert type(flip).__name__ == "RandomHorizontalFlip"


def test_registry_and_defaults_are_the_papers():
    assert methods.REGISTRY["mae"] is MAE
    model = MAE(make_encoder())
    assert (model.mask_ratio, model.norm_pix_loss) == (0.75, True)
    assert (model.decoder_dim, model.decoder_depth, model.decoder_num_heads) == (512, 8, 16)
    assert model.decoder_mlp_ratio == 4.0


def test_config_is_the_recipe_and_the_example_draws_a_saved_run(tmp_path):
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "mae" and config.backbone == "vit"
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, MAE) and model.mask_ratio == 0.75
    assert model.num_visible == 12  # int(49 * 0.25) of the 7x7 grid of 4 px patches
    # The example draws the reconstructions of a run from its work folder's model.keras.
    model.save(tmp_path / "model.keras")
    out = tmp_path / "grid"
    error = _example().main(
        ["--workdir", str(tmp_path), "--subset", "--test-examples=3", f"--out={out}"]
    )
    assert np.isfinite(error) and (out / "mae_reconstructions.png").stat().st_size > 0


def _example():
    spec = importlib.util.spec_from_file_location(EXAMPLE.stem, EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # example script end to end
def test_example_trains_and_writes_the_grid(tmp_path, capsys):
    error = _example().main(
        [
            "--epochs=1",
            "--subset",
            "--train-examples=128",
            "--test-examples=4",
            "--batch-size=64",
            "--dim=16",
            "--depth=1",
            "--decoder-dim=16",
            f"--out={tmp_path}",
        ]
    )
    assert (tmp_path / "mae_reconstructions.png").stat().st_size > 0
    assert 0 < error < 10 and "held-out masked-patch loss" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mask_ratio": 1.0}, "`mask_ratio` must be a number in \\[0, 1\\); received 1.0"),
        ({"mask_ratio": "0.75"}, "received '0.75'"),
        ({"mask_ratio": 0.95}, "keeps no patch of 16"),
        ({"decoder_dim": 6, "decoder_num_heads": 2}, "multiple of 4 .* received decoder_dim=6"),
        ({"decoder_dim": 8, "decoder_num_heads": 3}, "decoder_num_heads=3"),
        ({"decoder_depth": 0}, "`decoder_depth` must be an integer >= 1; received 0"),
        ({"decoder_mlp_ratio": 0}, "`decoder_mlp_ratio` must be a positive number"),
        ({"norm_pix_loss": "yes"}, "`norm_pix_loss` must be True or False; received 'yes'"),
        ({"seed": 1.5}, "`seed` must be an int or None"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_bad_encoders_raise():
    with pytest.raises(ValueError, match="Expected a keras_ssl ViT"):
        MAE(backbones.SmallResNet((8, 8, 1), widths=(4,)))
    with pytest.raises(ValueError, match="needs at least 2 values per patch"):
        MAE(
            ViT((4, 4, 1), patch_size=1, dim=8, depth=1, num_heads=2),
            decoder_dim=8,
            decoder_num_heads=2,
        )
    model = MAE(
        ViT((4, 4, 1), patch_size=1, dim=8, depth=1, num_heads=2),
        decoder_dim=8,
        decoder_num_heads=2,
        decoder_depth=1,
        norm_pix_loss=False,
    )
    assert model.patch_dim == 1


def test_bad_evaluation_input_raises():
    model = make_model()
    with pytest.raises(ValueError, match="rank 4"):
        model.reconstruction_error(np.zeros((4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        model.reconstruction_error(np.zeros((4, 8, 8, 1), np.float32), batch_size=0)
