import keras
import numpy as np
import pytest

from keras_ssl.backbones.decoder import ConvDecoder


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (13, 10, 2)])
def test_output_has_the_image_shape(shape):
    decoder = ConvDecoder(16, shape, widths=(8, 4))
    codes = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    images = decoder(codes).numpy()
    assert images.shape == (3, *shape)
    assert 0.0 <= images.min() and images.max() <= 1.0  # sigmoid output


def test_first_map_and_stages():
    decoder = ConvDecoder(5, (28, 28, 1), widths=(8, 4), output_activation=None)
    assert decoder.get_layer("conv_decoder_reshape").output.shape[1:] == (7, 7, 8)
    assert decoder.get_layer("conv_decoder_up1").output.shape[1:] == (28, 28, 4)
    assert decoder.get_layer("conv_decoder_out").activation is keras.activations.linear


def test_decoder_can_fit_a_fixed_image():
    keras.utils.set_random_seed(0)
    decoder = ConvDecoder(4, (8, 8, 1), widths=(8,))
    decoder.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    codes = np.eye(4, dtype=np.float32)
    targets = np.random.default_rng(1).random((4, 8, 8, 1)).astype(np.float32)
    history = decoder.fit(codes, targets, epochs=150, batch_size=4, verbose=0).history["loss"]
    assert history[-1] < 0.1 * history[0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"code_dim": 0}, "code_dim"),
        ({"image_shape": (28, 28)}, "image_shape"),
        ({"widths": ()}, "widths"),
    ],
)
def test_bad_arguments(kwargs, match):
    arguments = {"code_dim": 4, "image_shape": (8, 8, 1), **kwargs}
    with pytest.raises(ValueError, match=match):
        ConvDecoder(**arguments)
