"""Train a VAE or a BiGAN on Fashion-MNIST briefly, probe it, and draw samples.

    python examples/generate_fashion_mnist.py --method vae --epochs 3 --out runs/vae_example

Trains with ``model.fit`` (the user-code path), reports kNN (k=20, cosine) and linear-probe
accuracy of the representation (the VAE's posterior mean, BiGAN's E(x)) on a labelled subset,
and writes ``OUT/samples.png``: rows of test images, each followed by its reconstruction
(VAE: decoder(mu); BiGAN: G(E(x))), then images generated from the prior. ``OUT/metrics.json``
holds the numbers.
"""

import argparse
import json
import os

import keras_ssl  # first: keeps TensorFlow start-up notices off the console

# isort: split
import keras
import numpy as np

from keras_ssl.evaluation.samples import plot_model_samples
from keras_ssl.methods.bigan import BiGAN
from keras_ssl.methods.vae import VAE

IMAGE_SHAPE = (28, 28, 1)


def build(method, seed):
    """The method with the settings of its config file, compiled."""
    encoder = keras_ssl.backbones.SmallResNet(IMAGE_SHAPE, widths=(16, 32, 64))
    if method == "vae":
        model = VAE(encoder, latent_dim=32, seed=seed)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    else:
        model = BiGAN(encoder, latent_dim=50, seed=seed)
        model.compile(
            optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            discriminator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        )
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("vae", "bigan"), default="vae")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="runs/generate")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-examples", type=int, default=None, help="subset for quick runs")
    parser.add_argument("--probe-examples", type=int, default=10000, help="labelled train images")
    parser.add_argument("--test-examples", type=int, default=None, help="labelled test images")
    parser.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST IDX files")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = keras_ssl.datasets.fashion_mnist.load_data(
        path=args.data_dir
    )
    x_train, x_test = x_train[..., None], x_test[..., None]  # [N, 28, 28, 1] uint8
    x_test, y_test = x_test[: args.test_examples], y_test[: args.test_examples]
    model = build(args.method, args.seed)
    model.fit(
        x_train[: args.train_examples],
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
        verbose=2,
    )

    encoder = model.export_encoder
    probe_x, probe_y = x_train[: args.probe_examples], y_train[: args.probe_examples]
    train_features = keras_ssl.evaluation.extract_features(encoder, probe_x, normalize=False)
    test_features = keras_ssl.evaluation.extract_features(encoder, x_test, normalize=False)
    knn = keras_ssl.evaluation.knn_accuracy(
        keras_ssl.evaluation.l2_normalize(train_features),
        probe_y,
        keras_ssl.evaluation.l2_normalize(test_features),
        y_test,
        num_classes=10,
        k=20,
    )
    linear = keras_ssl.evaluation.linear_probe(
        train_features, probe_y, test_features, y_test, num_classes=10, seed=args.seed
    )["accuracy"]
    metrics = {
        "method": args.method,
        "epochs": args.epochs,
        "train_examples": int(len(x_train[: args.train_examples])),
        "probe_train_examples": int(len(probe_x)),
        "probe_test_examples": int(len(x_test)),
        "knn_accuracy": float(knn),
        "linear_accuracy": float(linear),
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    order = np.argsort(y_test[:200], kind="stable")  # a few test images of every class
    shown = x_test[:200][order][:: max(1, len(order) // 16)][:16]
    path = plot_model_samples(
        model,
        shown,
        os.path.join(args.out, "samples.png"),
        num_samples=16,
        seed=args.seed,
        title=f"{args.method}: test images, reconstructions, prior samples",
    )
    print(
        f"{args.method}: kNN accuracy {knn:.4f}, linear accuracy {linear:.4f}; "
        f"samples written to {path}"
    )
    return metrics


if __name__ == "__main__":
    main()
