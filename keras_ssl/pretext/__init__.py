"""Label-making transforms of the pretext tasks: rotations, patch pairs, jigsaw tiles, masks,
noise and colour spaces."""
