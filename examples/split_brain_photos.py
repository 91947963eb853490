"""Train a split-brain autoencoder on crops of scikit-image's sample photos; show both halves.

    python examples/split_brain_photos.py --epochs 30 --out runs/split_brain

Writes OUT/split_brain.png: one row per held-out crop (from photos not used for training) with
the L channel, the colour the L half predicts from it, the lightness the ab half predicts from
the colour, and the original.
"""

import argparse
import os

import keras_ssl  # noqa: F401  (first: keeps TensorFlow start-up notices off the console)

# isort: split
import keras
import numpy as np

from keras_ssl import backbones
from keras_ssl.datasets import sample_photos
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.evaluation import plot_image_columns
from keras_ssl.methods.split_brain import SplitBrain
from keras_ssl.pretext import color


def save_grid(model, images, path):
    """Rows of (L input, ab from L, L from ab, original) for float RGB ``images``."""
    columns = (
        ("input (L)", color.rgb_to_lab(images).numpy()[..., 0] / 100.0),
        ("ab from L", model.colorize(images)),
        ("L from ab", model.predict_lightness(images)),
        ("original", images),
    )
    return plot_image_columns(columns, path, max_rows=len(images))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--train-examples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--widths", default="16,32", help="channels per stage of EACH half")
    parser.add_argument("--out", default="runs/split_brain")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    x_train, x_test = sample_photos.load_data(
        image_size=args.image_size, train_examples=args.train_examples, test_examples=8
    )
    widths = tuple(int(w) for w in args.widths.split(","))
    encoder = backbones.SmallResNet((args.image_size, args.image_size, 1), widths=widths)
    model = SplitBrain(encoder, head_dim=2 * widths[-1])
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    dataset = make_ssl_dataset(
        x_train, batch_size=args.batch_size, augmenter=model.augmenter, seed=0
    )
    history = model.fit(dataset, epochs=args.epochs, verbose=2).history
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "split_brain.png")
    save_grid(model, x_test.astype(np.float32) / 255.0, path)
    for term in ("loss", "ab_loss", "lightness_loss"):
        print(f"{term} {history[term][0]:.3f} -> {history[term][-1]:.3f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
