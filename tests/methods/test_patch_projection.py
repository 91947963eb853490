import pytest

from keras_ssl import backbones
from keras_ssl.methods.patch_projection import (
    check_freeze_patch_projection,
    patch_embeddings,
    random_patch_projection,
)


def tiny_vit():
    return backbones.ViT((8, 8, 1), patch_size=4, dim=8, depth=1, num_heads=2)


def resnet():
    return backbones.SmallResNet((8, 8, 1), widths=(4,))


@pytest.mark.parametrize("freeze", [None, True])
def test_vit_patch_projection_is_frozen_and_the_rest_still_trains(freeze):
    encoder = tiny_vit()
    (patches,) = patch_embeddings(encoder)
    trainable = len(encoder.trainable_weights)
    assert random_patch_projection(encoder, freeze) is True
    assert not patches.projection.trainable
    assert len(encoder.trainable_weights) == trainable - len(patches.projection.weights)


def test_vit_patch_projection_trains_when_not_frozen():
    encoder = tiny_vit()
    assert random_patch_projection(encoder, False) is False
    assert patch_embeddings(encoder)[0].projection.trainable


def test_resnet_has_nothing_to_freeze():
    encoder = resnet()
    assert patch_embeddings(encoder) == []
    assert random_patch_projection(encoder, None) is False
    with pytest.raises(ValueError, match=r"`freeze_patch_projection=True` needs an encoder with"):
        random_patch_projection(encoder, True)


def test_bad_freeze_value():
    check_freeze_patch_projection(None)
    with pytest.raises(ValueError, match=r"must be None, True or False; received 'yes'"):
        check_freeze_patch_projection("yes")
    with pytest.raises(ValueError, match=r"must be None, True or False; received 2"):
        random_patch_projection(tiny_vit(), 2)
