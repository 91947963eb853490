import keras
import numpy as np
import pytest

from keras_ssl import backbones


@pytest.mark.parametrize(
    "fn, torchvision_params, fc_params, dim",
    [
        (backbones.ResNet18, 11_689_512, 513_000, 512),
        (backbones.ResNet34, 21_797_672, 513_000, 512),
        (backbones.ResNet50, 25_557_032, 2_049_000, 2048),
    ],
)
def test_standard_resnets_match_torchvision_parameter_counts(
    fn, torchvision_params, fc_params, dim
):
    # torchvision's published counts, minus the 1000-way fc layer, with the 7x7x3x64 ImageNet
    # stem (9,408 weights) replaced by a 3x3x1x64 CIFAR stem (576 weights).
    model = fn((32, 32, 1), stem="cifar")
    assert model.output_shape == (None, dim)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == torchvision_params - fc_params - 9_408 + 576


def test_stems_set_resolution():
    cifar = backbones.ResNet18((32, 32, 3))
    imagenet = backbones.ResNet18((128, 128, 3))
    assert cifar.get_layer("stage4_block2_out").output.shape[1:3] == (4, 4)
    assert imagenet.get_layer("stage4_block2_out").output.shape[1:3] == (4, 4)
    assert imagenet.get_layer("stem_pool") is not None
    with pytest.raises(ValueError, match="No such layer"):
        cifar.get_layer("stem_pool")


def test_small_resnet_forward_and_zero_init_residual_is_identity():
    model = backbones.SmallResNet((28, 28, 1), zero_init_residual=True)
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    assert model(x).shape == (2, 128)
    block = model.get_layer("stage1_block1_bn2")
    np.testing.assert_array_equal(block.gamma.numpy(), 0.0)


def test_synchronized_bn_flag_reaches_every_batch_norm():
    model = backbones.SmallResNet((16, 16, 3), synchronized_bn=True)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.synchronized for layer in norms)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_shape": (28, 28)}, "input_shape"),
        ({"input_shape": (28, 28, 1), "stem": "big"}, "stem"),
        ({"input_shape": (28, 28, 1), "block": "wide"}, "block"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        backbones.ResNet(stage_blocks=(1,), stage_widths=(8,), **kwargs)


def test_stage_lengths_must_match():
    with pytest.raises(ValueError, match="equal length"):
        backbones.ResNet((8, 8, 1), (1, 1), (8,))


def test_adapter_pools_and_rescales_keras_applications():
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35
    )
    encoder = backbones.from_keras_model(base, input_range=(-1.0, 1.0))
    assert encoder.output_shape == (None, base.output_shape[-1])
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    expected = np.mean(base(x * 2.0 - 1.0), axis=(1, 2))
    np.testing.assert_allclose(encoder(x), expected, rtol=1e-5, atol=1e-6)


def test_adapter_errors():
    with pytest.raises(ValueError, match="keras.Model"):
        backbones.from_keras_model(object())
    flat = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten()])
    with pytest.raises(ValueError, match="input_range"):
        backbones.from_keras_model(flat, input_range=(1, 0))
    with pytest.raises(ValueError, match="pooling"):
        backbones.from_keras_model(flat, pooling="median")
    assert backbones.from_keras_model(flat).output_shape == (None, 16)


def test_adapter_wraps_a_keras_cv_backbone():
    import keras_cv

    base = keras_cv.models.CSPDarkNetBackbone(
        stackwise_channels=[8, 16],
        stackwise_depth=[1, 1],
        input_shape=(32, 32, 3),
        include_rescaling=False,
    )
    encoder = backbones.from_keras_model(base)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(encoder(x), np.mean(base(x), axis=(1, 2)), rtol=1e-5, atol=1e-6)
