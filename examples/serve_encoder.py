"""Serve an exported encoder with TensorFlow alone (keras_ssl is not needed here).

    python examples/serve_encoder.py runs/example/encoder

Embeds a few Fashion-MNIST test images and prints each one's nearest neighbours among the
others by cosine similarity: a tiny image-retrieval service.
"""

import sys

import numpy as np
import tensorflow as tf


def main(export_dir, images=None):
    encoder = tf.saved_model.load(export_dir)
    serve = encoder.signatures["serving_default"]  # the same function TF Serving exposes
    input_spec = serve.structured_input_signature[1]["images"]
    if images is None:
        # Random uint8 images of the exported input size stand in for real queries.
        shape = (8, *input_spec.shape[1:])
        images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    embeddings = serve(images=tf.constant(images, tf.uint8))["embeddings"].numpy()
    similarity = embeddings @ embeddings.T  # embeddings are unit length: cosine similarity
    np.fill_diagonal(similarity, -np.inf)
    for index, row in enumerate(similarity):
        print(f"image {index}: nearest neighbour {int(np.argmax(row))} (cos {row.max():.3f})")
    return embeddings


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} EXPORT_DIR")
    main(sys.argv[1])
