"""Label-making transforms of the pretext tasks: rotations, patch pairs, jigsaw tiles, masks,
noise and colour spaces."""

from keras_ssl.pretext import color, jigsaw, masks, noise, patch_pairs, rotation

__all__ = ["color", "jigsaw", "masks", "noise", "patch_pairs", "rotation"]
