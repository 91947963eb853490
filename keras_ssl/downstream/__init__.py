"""Downstream models built on pretrained encoders: U-Net segmentation."""

from keras_ssl.downstream.unet import UNet

__all__ = ["UNet"]
