"""Encoders: ResNets with a small-image stem, Vision Transformers, and an adapter for any Keras
model."""

from keras_ssl.backbones.adapter import from_keras_model
from keras_ssl.backbones.decoder import ConvDecoder
from keras_ssl.backbones.features import (
    TokenGrid,
    feature_extractor,
    feature_levels,
    pyramid_outputs,
    with_input_shape,
)
from keras_ssl.backbones.resnet import ResNet, ResNet18, ResNet34, ResNet50, SmallResNet
from keras_ssl.backbones.vit import ViT, ViTSmall, ViTTiny

#: Backbones by the name configs use; each is called as ``fn(input_shape, **kwargs)``.
REGISTRY = {
    "small_resnet": SmallResNet,
    "resnet18": ResNet18,
    "resnet34": ResNet34,
    "resnet50": ResNet50,
    "vit": ViT,
    "vit_tiny": ViTTiny,
    "vit_small": ViTSmall,
}

__all__ = [
    "ConvDecoder",
    "REGISTRY",
    "ResNet",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "SmallResNet",
    "ViT",
    "ViTSmall",
    "TokenGrid",
    "ViTTiny",
    "feature_extractor",
    "feature_levels",
    "from_keras_model",
    "pyramid_outputs",
    "with_input_shape",
]
