"""Train a denoising autoencoder or a context encoder on Fashion-MNIST and look at its work.

    python examples/reconstruct_fashion_mnist.py --method autoencoder --epochs 3 --out runs/ae
    python examples/reconstruct_fashion_mnist.py --method context_encoder --epochs 3 --out runs/ce

Writes OUT/reconstructions.png (rows: held-out test images; columns: the input the model saw,
the mask (black = dropped or corrupted), the prediction, the original) and prints the
held-out reconstruction error: the mean squared error per pixel value of the reconstructions
of corrupted test images (autoencoder), or inside the masked region (context encoder).
"""

import argparse
import os

import keras_ssl  # first: keeps TensorFlow start-up notices off the console

# isort: split
import keras

from keras_ssl.evaluation.reconstruction import reconstruction_grid
from keras_ssl.methods.autoencoder import DenoisingAutoencoder
from keras_ssl.methods.context_encoder import ContextEncoder


def build(method, widths, image_shape):
    encoder = keras_ssl.backbones.SmallResNet(image_shape, widths=widths)
    if method == "autoencoder":
        return DenoisingAutoencoder(encoder, noise="masking", noise_amount=0.25, seed=0)
    return ContextEncoder(encoder, mask="random_blocks", seed=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--method", choices=("autoencoder", "context_encoder"), default="autoencoder"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-examples", type=int, default=None, help="subset for quick runs")
    parser.add_argument("--test-examples", type=int, default=2000)
    parser.add_argument("--widths", default="16,32,64", help="small ResNet stage widths")
    parser.add_argument("--subset", action="store_true", help="use the embedded 2000-image subset")
    parser.add_argument("--out", default="runs/reconstruct")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    (x_train, _), (x_test, _) = keras_ssl.datasets.fashion_mnist.load_data(subset=args.subset)
    x_train, x_test = (
        x_train[: args.train_examples, ..., None],
        x_test[: args.test_examples, ..., None],
    )
    widths = tuple(int(w) for w in args.widths.split(","))
    model = build(args.method, widths, x_train.shape[1:])
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    dataset = keras_ssl.datasets.make_ssl_dataset(
        x_train, batch_size=args.batch_size, augmenter=model.augmenter, seed=0
    )
    model.fit(dataset, epochs=args.epochs, verbose=2)

    os.makedirs(args.out, exist_ok=True)
    path = reconstruction_grid(
        model,
        x_test,
        os.path.join(args.out, "reconstructions.png"),
        title=f"{args.method}, {args.epochs} epochs (held-out images)",
    )
    error = model.reconstruction_error(x_test)
    print(f"Reconstruction grid written to {path}")
    print(f"held-out reconstruction error (MSE per pixel, {len(x_test)} test images): {error:.5f}")
    return error


if __name__ == "__main__":
    main()
