import keras
import numpy as np
import pytest

from keras_ssl.layers import ConvDiscriminator, JointDiscriminator
from keras_ssl.layers.discriminators import check_widths


def test_conv_discriminator_gives_one_logit_per_image_without_batch_norm():
    model = ConvDiscriminator((12, 12, 3), widths=(4, 8))
    assert model.output_shape == (None, 1) and model.name == "discriminator"
    # Variable paths are part of saved files: keep them.
    assert [w.path for w in model.weights] == [
        "discriminator_conv0/kernel",
        "discriminator_conv0/bias",
        "discriminator_conv1/kernel",
        "discriminator_conv1/bias",
        "discriminator_logit/kernel",
        "discriminator_logit/bias",
    ]
    assert model.get_layer("discriminator_conv1").output.shape == (None, 3, 3, 8)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    logits = model(np.random.default_rng(0).random((2, 12, 12, 3), np.float32))
    assert logits.shape == (2, 1)


def test_joint_discriminator_sees_images_and_codes():
    model = JointDiscriminator((8, 8, 1), 4, widths=(4, 8), hidden_dim=6, name="d")
    assert model.output_shape == (None, 1)
    assert [w.path for w in model.weights] == [
        f"d_{layer}/{kind}"
        for layer in ("conv0", "conv1", "code_fc", "joint_fc", "logit")
        for kind in ("kernel", "bias")
    ]
    assert model.get_layer("d_joint").output.shape == (None, 2 * 2 * 8 + 6)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    rng = np.random.default_rng(0)
    images, codes = rng.random((3, 8, 8, 1), np.float32), rng.random((3, 4), np.float32)
    logits = model([images, codes]).numpy()
    assert logits.shape == (3, 1)
    # The logit depends on the code as well as on the image.
    assert not np.allclose(model([images, codes + 1.0]).numpy(), logits)


def test_check_widths():
    assert check_widths([8, 16]) == (8, 16)
    for bad in ((), (8, 0), (8, 2.0), (True,)):
        with pytest.raises(ValueError, match="`discriminator_widths` must be a non-empty"):
            check_widths(bad, "discriminator_widths")
