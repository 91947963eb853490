"""Train a small MAE on Fashion-MNIST (or load one) and look at its reconstructions.

    python examples/mae_reconstruction.py --epochs 3 --out runs/mae_example
    python examples/mae_reconstruction.py --workdir runs/mae --out runs/mae  # a trained run

Writes OUT/mae_reconstructions.png: one row per held-out test image, columns original, masked
(the 25% of patches the encoder saw; masked patches grey) and reconstruction (the visible
patches with the decoder's predicted patches pasted in). With per-patch normalised targets the
predicted patches are shown with the original patch's mean and standard deviation (as in the
paper's figures). Prints the held-out masked-patch loss (the training loss on test images).
"""

import argparse
import os

import keras_ssl  # first: keeps TensorFlow start-up notices off the console

# isort: split
import keras
import numpy as np

from keras_ssl.evaluation.reconstruction import plot_image_columns
from keras_ssl.methods.mae import MAE


def build(dim, depth, decoder_dim):
    encoder = keras_ssl.backbones.ViT(
        (28, 28, 1), patch_size=4, dim=dim, depth=depth, num_heads=4 if dim % 4 == 0 else 1
    )
    return MAE(encoder, decoder_dim=decoder_dim, decoder_depth=2, decoder_num_heads=4, seed=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="a `keras-ssl train` folder to load")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-examples", type=int, default=None, help="subset for quick runs")
    parser.add_argument("--test-examples", type=int, default=8, help="images drawn and scored")
    parser.add_argument("--dim", type=int, default=64, help="ViT width (patch 4, 4 heads)")
    parser.add_argument("--depth", type=int, default=4, help="ViT blocks")
    parser.add_argument("--decoder-dim", type=int, default=64)
    parser.add_argument("--subset", action="store_true", help="use the embedded 2000-image subset")
    parser.add_argument("--out", default="runs/mae_example")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    (x_train, _), (x_test, _) = keras_ssl.datasets.fashion_mnist.load_data(subset=args.subset)
    x_train, x_test = (
        x_train[: args.train_examples, ..., None],
        x_test[: args.test_examples, ..., None],
    )
    if args.workdir:
        model = keras.saving.load_model(os.path.join(args.workdir, "model.keras"))
        if not isinstance(model, MAE):
            raise ValueError(
                f"{args.workdir!r} holds a {type(model).__name__}, not an MAE. Fix: pass the "
                "work folder of `keras-ssl train --config configs/mae_fashion_mnist.py`."
            )
        title = f"MAE from {args.workdir} (held-out images)"
    else:
        model = build(args.dim, args.depth, args.decoder_dim)
        model.compile(optimizer=keras.optimizers.AdamW(1.5e-3, beta_2=0.95, weight_decay=0.05))
        dataset = keras_ssl.datasets.make_ssl_dataset(
            x_train, batch_size=args.batch_size, augmenter=model.augmenter, seed=0
        )
        model.fit(dataset, epochs=args.epochs, verbose=2)
        title = f"MAE, {args.epochs} epochs, mask ratio {model.mask_ratio} (held-out images)"

    masks, _, reconstructions = model.reconstruct(x_test)
    originals = x_test.astype(np.float32) / 255.0
    masked = originals * masks + 0.5 * (1.0 - masks)
    os.makedirs(args.out, exist_ok=True)
    path = plot_image_columns(
        [("original", originals), ("masked", masked), ("reconstruction", reconstructions)],
        os.path.join(args.out, "mae_reconstructions.png"),
        max_rows=len(x_test),
        title=title,
    )
    error = model.reconstruction_error(x_test)
    print(f"Reconstruction grid written to {path}")
    print(f"held-out masked-patch loss ({len(x_test)} test images): {error:.5f}")
    return error


if __name__ == "__main__":
    main()
