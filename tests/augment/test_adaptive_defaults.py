"""A method's default augmentation adapts to the input: crops, jitter and blur per image shape."""

import keras
import pytest

from keras_ssl import methods
from keras_ssl.augment import (
    ColorJitter,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomSolarize,
    multicrop,
    presets,
)

GRAY_28 = (28, 28, 1)
RGB_32 = (32, 32, 3)
RGB_224 = (224, 224, 3)
AREA_28 = (20 / 28) ** 2  # crops keep >= 20 px of a 28-px side
AREA_32 = (20 / 32) ** 2


def _types(pipeline):
    return [type(layer) for layer in pipeline]


def _layer_configs(augmenter):
    """Every layer's config without its (auto-generated) name, view by view."""
    return [
        [{k: v for k, v in layer.get_config().items() if k != "name"} for layer in pipeline]
        for pipeline in augmenter.pipelines
    ]


def _jitter(layer):
    return (layer.brightness, layer.contrast, layer.saturation, layer.hue, layer.probability)


def _encoder(image_shape):
    inputs = keras.Input(image_shape)
    x = keras.layers.Conv2D(4, 3, strides=4)(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_min_crop_area_keeps_twenty_pixels_of_the_side():
    assert presets.min_crop_area(GRAY_28) == pytest.approx(AREA_28, rel=1e-12)
    assert presets.min_crop_area((32, 48, 3)) == pytest.approx(AREA_32, rel=1e-12)
    assert presets.min_crop_area((16, 16, 1)) == 1.0  # smaller than 20 px: no cropping
    assert presets.min_crop_area(RGB_224) == pytest.approx((20 / 224) ** 2)
    assert presets.raise_crop_scale((0.08, 1.0), 0.5) == (0.5, 1.0)
    assert presets.raise_crop_scale((0.2, 0.3), 0.5) == (0.5, 0.5)
    assert presets.raise_crop_scale((0.6, 1.0), 0.5) == (0.6, 1.0)


def test_simclr_default_on_28px_grayscale():
    augmenter = presets.default_augmenter("simclr", GRAY_28)
    assert augmenter.num_views == 2
    for pipeline in augmenter.pipelines:
        assert _types(pipeline) == [RandomResizedCrop, RandomHorizontalFlip, ColorJitter]
        crop, flip, jitter = pipeline
        assert (crop.height, crop.width) == (28, 28)
        assert crop.scale == pytest.approx((AREA_28, 1.0), rel=1e-12)
        assert flip.probability == 0.5
        # s = 1: brightness and contrast 0.8 (the only ones a 1-channel image has).
        assert _jitter(jitter) == pytest.approx((0.8, 0.8, 0.8, 0.2, 0.8))


def test_simclr_default_on_32px_rgb_is_cifar_recipe_with_milder_crops():
    first, second = presets.default_augmenter("simclr", RGB_32).pipelines
    assert _types(first) == [RandomResizedCrop, RandomHorizontalFlip, ColorJitter, RandomGrayscale]
    assert first[0].scale == pytest.approx((AREA_32, 1.0), rel=1e-12)
    assert _jitter(first[2]) == pytest.approx((0.4, 0.4, 0.4, 0.1, 0.8))  # s = 0.5 (CIFAR-10)
    assert first[3].probability == 0.2


@pytest.mark.parametrize(
    ("preset", "paper"),
    [
        ("simclr", lambda shape: presets.simclr(shape, color_strength=1.0)),  # ImageNet s = 1
        ("byol", presets.byol),
        ("moco_v1", presets.moco_v1),
        ("moco_v2", presets.moco_v2),
        ("multicrop", multicrop),
    ],
)
def test_imagenet_sized_rgb_gets_the_papers_recipe(preset, paper):
    assert _layer_configs(presets.default_augmenter(preset, RGB_224)) == _layer_configs(
        paper(RGB_224)
    )


def test_byol_default_on_28px_grayscale_drops_blur_and_strengthens_intensity_jitter():
    first, second = presets.default_augmenter("byol", GRAY_28).pipelines
    assert _types(first) == [RandomResizedCrop, RandomHorizontalFlip, ColorJitter]
    assert _types(second) == [RandomResizedCrop, RandomHorizontalFlip, ColorJitter, RandomSolarize]
    assert first[0].scale == pytest.approx((AREA_28, 1.0), rel=1e-12)
    assert _jitter(first[2]) == pytest.approx((0.8, 0.8, 0.0, 0.0, 0.8))
    assert second[3].probability == 0.2
    # Blur stays on from 64 px (kernel 10% of the side).
    first_64 = presets.default_augmenter("byol", (64, 64, 3)).pipelines[0]
    assert _types(first_64)[-1] is RandomGaussianBlur and first_64[-1].kernel_size == 7
    assert first_64[0].scale == pytest.approx(((20 / 64) ** 2, 1.0))  # 0.098 > BYOL's 0.08
    first_80 = presets.default_augmenter("byol", (80, 80, 3)).pipelines[0]
    assert first_80[0].scale == pytest.approx((0.08, 1.0))  # (20/80)^2 = 0.0625 < 0.08


def test_moco_defaults_adapt_crops_jitter_and_blur():
    v2 = presets.default_augmenter("moco_v2", GRAY_28).pipelines[0]
    assert _types(v2) == [RandomResizedCrop, RandomHorizontalFlip, ColorJitter]  # no blur
    assert v2[0].scale == pytest.approx((AREA_28, 1.0), rel=1e-12)
    assert _jitter(v2[2])[:2] == pytest.approx((0.8, 0.8))
    v2_rgb = presets.default_augmenter("moco_v2", (48, 48, 3)).pipelines[0]
    assert v2_rgb[0].scale == pytest.approx((0.2, 1.0))  # (20/48)^2 = 0.17 < MoCo's 0.2
    assert _jitter(v2_rgb[2]) == pytest.approx((0.4, 0.4, 0.4, 0.1, 0.8))
    v1 = presets.default_augmenter("moco_v1", GRAY_28).pipelines[0]
    assert _types(v1) == [RandomResizedCrop, RandomGrayscale, ColorJitter, RandomHorizontalFlip]
    assert v1[0].scale == pytest.approx((AREA_28, 1.0), rel=1e-12)
    assert _jitter(v1[2]) == pytest.approx((0.8, 0.8, 0.0, 0.0, 1.0))


def test_multicrop_default_on_28px_grayscale():
    augmenter = presets.default_augmenter("multicrop", GRAY_28)
    assert augmenter.num_views == 10
    shapes = augmenter.compute_output_shape((None, 28, 28, 1))
    assert shapes == ((None, 28, 28, 1),) * 2 + ((None, 12, 12, 1),) * 8
    first, second, *local = augmenter.pipelines
    assert first[0].scale == pytest.approx((AREA_28, 1.0), rel=1e-12)
    # Local crops keep >= 12 px (no magnification of a 12-px view) and reach the global min.
    assert local[0][0].scale == pytest.approx(((12 / 28) ** 2, AREA_28), rel=1e-12)
    assert _types(first) == [RandomResizedCrop, RandomHorizontalFlip, ColorJitter]
    assert _types(second) == _types(first) + [RandomSolarize]
    assert _jitter(first[2]) == pytest.approx((0.8, 0.8, 0.0, 0.0, 0.8))


def test_method_preset_arguments_are_adapted_as_paper_values():
    swav = methods.SwAV.default_preset_kwargs
    kwargs = presets.adapt_to_image("multicrop", GRAY_28, **swav)
    assert kwargs["num_local"] == swav["num_local"] and kwargs["solarize_probability"] == 0.0
    assert kwargs["global_scale"] == pytest.approx((AREA_28, 1.0), rel=1e-12)
    assert kwargs["local_scale"] == pytest.approx(((12 / 28) ** 2, AREA_28), rel=1e-12)
    # At 224 px SwAV's own values are kept.
    paper = presets.adapt_to_image("multicrop", RGB_224, **swav)
    assert paper["global_scale"] == (0.14, 1.0) and paper["local_scale"] == (0.05, 0.14)
    # Explicit jitter or blur from the method wins over the adaptation.
    assert presets.adapt_to_image("byol", GRAY_28, blur=True)["blur"] is True
    # Presets without size-dependent strengths are passed through.
    assert presets.adapt_to_image("crop_flip", GRAY_28, crop_scale=(0.2, 1.0)) == {
        "crop_scale": (0.2, 1.0)
    }


@pytest.mark.parametrize(
    ("cls", "preset", "kwargs"),
    [
        (methods.SimCLR, "simclr", {}),
        (methods.BYOL, "byol", {}),
        (methods.MoCo, "moco_v2", {}),
        (methods.SwAV, "multicrop", methods.SwAV.default_preset_kwargs),
    ],
)
def test_methods_without_an_augmenter_use_the_adapted_default(cls, preset, kwargs):
    model = cls(encoder=_encoder(GRAY_28))
    expected = presets.default_augmenter(preset, GRAY_28, **kwargs)
    assert _layer_configs(model.augmenter) == _layer_configs(expected)


def test_an_explicit_augmenter_is_used_as_given():
    with pytest.warns(UserWarning, match="crops as small as 7.9 px"):
        augmenter = presets.simclr(GRAY_28)  # the paper's 8% crops, on purpose
    model = methods.SimCLR(encoder=_encoder(GRAY_28), augmenter=augmenter)
    assert model.augmenter is augmenter and model.augmenter.pipelines[0][0].scale == (0.08, 1.0)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: presets.default_augmenter("simclr_v9", GRAY_28), r"Unknown augmentation preset"),
        (lambda: presets.adapt_to_image("simclr", GRAY_28, crop_scale=0.5), r"`crop_scale` must"),
        (lambda: presets.byol(GRAY_28, jitter=(0.4, 0.4)), r"`jitter` must be 4 numbers"),
        (lambda: presets.byol(GRAY_28, jitter=(0.4, -1, 0, 0)), r"`jitter contrast` must be"),
        (lambda: presets.default_augmenter("simclr", (28, 28, 2)), r"`image_shape` must be"),
    ],
)
def test_bad_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern + r".*Fix"):
        call()


def _warnings_of(call):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_crops_too_small_for_the_image_warn_once_with_the_fix():
    messages = _warnings_of(lambda: presets.simclr(GRAY_28))  # the paper's 8% crops: 7.9 px
    assert len(messages) == 1  # one warning for the two views
    assert messages[0].startswith("simclr: crop_scale=(0.08, 1.0) makes crops as small as 7.9 px")
    assert "Fix: pass crop_scale=(0.51, 1.0)" in messages[0]
    assert "moco_v2: crop_scale=(0.2, 1.0)" in _warnings_of(lambda: presets.moco_v2((16, 16, 3)))[0]
    assert len(_warnings_of(lambda: presets.byol((24, 24, 3)))) == 1
    assert len(_warnings_of(lambda: presets.moco_v1((12, 12, 1)))) == 1
    # 8% of a 32-px side is 9.1 px: CIFAR-10's recipe does not warn; nor do the adapted defaults.
    assert _warnings_of(lambda: presets.simclr(RGB_32)) == []
    for preset in presets.ADAPTIVE_PRESETS:
        assert _warnings_of(lambda p=preset: presets.default_augmenter(p, GRAY_28)) == []


def test_multicrop_warns_for_tiny_local_crops_and_views():
    messages = _warnings_of(lambda: multicrop(GRAY_28))  # DINO's 5% local crops: 6.3 px
    assert len(messages) == 1
    assert "multicrop: local_scale=(0.05, 0.4) makes crops as small as 6.3 px" in messages[0]
    assert "Fix: pass local_scale=(0.18, 0.51)" in messages[0]
    assert _warnings_of(lambda: multicrop(GRAY_28, num_local=0)) == []  # no local crops
    tiny = _warnings_of(lambda: multicrop(GRAY_28, local_size=6, local_scale=(0.2, 0.5)))
    assert len(tiny) == 1 and tiny[0].startswith("multicrop: local views of 6x6 px")
    assert "Fix: pass local_size=8 or more" in tiny[0]
    # A method's default on 16-px images: local views of 7 px cannot be adapted away.
    default_16 = _warnings_of(lambda: presets.default_augmenter("multicrop", (16, 16, 1)))
    assert len(default_16) == 1 and "local views of 7x7 px" in default_16[0]
    assert _warnings_of(lambda: multicrop(RGB_224)) == []
