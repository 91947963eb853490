import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.layers.mae_decoder import MAEDecoder, check_decoder_arguments
from keras_ssl.layers.patch_masking import random_masking, sincos_position_embedding

BATCH, VISIBLE, WIDTH = 3, 4, 6  # 4 of the 16 patches of a 4x4 grid visible, encoder width 6


def make_decoder():
    decoder = MAEDecoder((4, 4), 12, dim=8, depth=1, num_heads=2, mlp_ratio=2.0, name="decoder")
    decoder.build((None, 1 + VISIBLE, WIDTH))
    return decoder


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    encoded = tf.constant(rng.normal(size=(BATCH, 1 + VISIBLE, WIDTH)).astype(np.float32))
    ids_keep, mask, ids_restore = random_masking(rng.random((BATCH, 16)), VISIBLE)
    return encoded, ids_keep, mask, ids_restore


def test_predicts_every_patch_in_float32():
    keras.utils.set_random_seed(0)
    decoder = make_decoder()
    encoded, _, _, ids_restore = make_inputs()
    pixels = decoder(encoded, ids_restore)
    assert pixels.shape == (BATCH, 16, 12) and pixels.dtype == tf.float32
    assert decoder.compute_output_shape((BATCH, 1 + VISIBLE, WIDTH)) == (BATCH, 16, 12)
    assert decoder.mask_token.shape == (1, 1, 8)


def test_puts_the_mask_token_and_sincos_positions_at_masked_patches():
    keras.utils.set_random_seed(0)
    decoder = make_decoder()
    np.testing.assert_allclose(
        decoder.positions[0], sincos_position_embedding(8, (4, 4)), rtol=0, atol=0
    )
    seen = []
    call = decoder.body.call
    decoder.body.call = lambda inputs, *a, **k: seen.append(inputs) or call(inputs, *a, **k)
    encoded, ids_keep, mask, ids_restore = make_inputs(1)
    decoder(encoded, ids_restore)
    del decoder.body.call
    tokens = seen[0].numpy() - decoder.positions
    embedded = decoder.embedding(encoded).numpy()
    np.testing.assert_allclose(tokens[:, 0], embedded[:, 0], rtol=1e-5, atol=1e-6)
    masked = mask.numpy().astype(bool)
    mask_token = decoder.mask_token.numpy()[0, 0]
    np.testing.assert_allclose(
        tokens[:, 1:][masked], np.tile(mask_token, (masked.sum(), 1)), rtol=1e-5, atol=1e-6
    )
    for row in range(BATCH):  # visible patch ids_keep[i] holds encoded token 1 + i
        for i, patch in enumerate(ids_keep.numpy()[row]):
            np.testing.assert_allclose(
                tokens[row, 1 + patch], embedded[row, 1 + i], rtol=1e-5, atol=1e-6
            )


def test_config_round_trip_gives_the_same_predictions():
    keras.utils.set_random_seed(0)
    decoder = make_decoder()
    config = decoder.get_config()
    assert (config["grid_size"], config["patch_dim"], config["dim"]) == ((4, 4), 12, 8)
    assert (config["depth"], config["num_heads"], config["mlp_ratio"]) == (1, 2, 2.0)
    rebuilt = MAEDecoder.from_config(config)
    rebuilt.build((None, 1 + VISIBLE, WIDTH))
    rebuilt.set_weights(decoder.get_weights())
    encoded, _, _, ids_restore = make_inputs(2)
    np.testing.assert_allclose(
        rebuilt(encoded, ids_restore), decoder(encoded, ids_restore), rtol=1e-6, atol=1e-6
    )


def test_check_decoder_arguments():
    assert check_decoder_arguments(512, 8, 16, 4.0) == (512, 8, 16)
    assert check_decoder_arguments(np.int64(64), 1, 4, 2) == (64, 1, 4)
    with pytest.raises(ValueError, match="`depth` must be an integer >= 1; received 0"):
        check_decoder_arguments(8, 0, 2, 4.0)
    with pytest.raises(ValueError, match=r"`dec_dim` must be a multiple of 4 .* dec_dim=6"):
        check_decoder_arguments(6, 1, 2, 4.0, prefix="dec_")
    with pytest.raises(ValueError, match="num_heads=3"):
        check_decoder_arguments(8, 1, 3, 4.0)
    with pytest.raises(ValueError, match="`mlp_ratio` must be a positive number"):
        check_decoder_arguments(8, 1, 2, 0)
