"""Train a colour method on crops of scikit-image's sample photos and show its colourings.

    python examples/colorize_photos.py --method colorization --epochs 30 --out runs/colorize

Writes OUT/colorized.png: one row per held-out crop (from photos not used for training), with
the input the network sees (the L channel), its colouring (annealed mean of the predicted ab
distribution, T = 0.38) and the original.
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
from keras_ssl.methods.colorization import Colorization
from keras_ssl.pretext import color

METHODS = ("colorization",)


def build(method, image_size):
    encoder = backbones.SmallResNet((image_size, image_size, 1), widths=(32, 64))
    return Colorization(encoder, head_dim=64)


def save_grid(model, images, path):
    """Rows of (L channel, prediction, original) for ``images`` (uint8 RGB)."""
    columns = (
        ("input (L)", color.rgb_to_lab(images).numpy()[..., 0] / 100.0),
        ("prediction", model.colorize(images)),
        ("original", images),
    )
    return plot_image_columns(columns, path, max_rows=len(images))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="colorization", choices=METHODS)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--train-examples", type=int, default=2048)
    parser.add_argument("--out", default="runs/colorize")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    x_train, x_test = sample_photos.load_data(
        image_size=args.image_size, train_examples=args.train_examples, test_examples=8
    )
    model = build(args.method, args.image_size)
    model.adapt(x_train)  # empirical ab-bin frequencies -> class-rebalancing weights
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    dataset = make_ssl_dataset(x_train, batch_size=64, augmenter=model.augmenter, seed=0)
    history = model.fit(dataset, epochs=args.epochs, verbose=2).history
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "colorized.png")
    save_grid(model, x_test.astype(np.float32) / 255.0, path)
    print(f"loss {history['loss'][0]:.3f} -> {history['loss'][-1]:.3f}; wrote {path}")


if __name__ == "__main__":
    main()
