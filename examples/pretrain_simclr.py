"""Pretrain SimCLR on Fashion-MNIST from your own code, watch kNN / linear probes, export.

    python examples/pretrain_simclr.py --epochs 2 --out runs/example

This is the user-code path (``model.fit``); ``keras-ssl train`` runs the same pieces from a
config file. On a CPU the small ResNet trains at about 1000 image pairs/s with bfloat16.
"""

import argparse

import keras_ssl  # first: keeps TensorFlow start-up notices off the console

# isort: split
import keras


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--backbone", default="small_resnet", choices=sorted(keras_ssl.backbones.REGISTRY)
    )
    parser.add_argument("--train-examples", type=int, default=None, help="subset for quick runs")
    parser.add_argument("--out", default="runs/example")
    args = parser.parse_args()

    keras_ssl.precision.set_policy("auto")  # bfloat16 where the hardware has it
    (x_train, y_train), (x_test, y_test) = keras_ssl.datasets.fashion_mnist.load_data()
    x_train, x_test = x_train[..., None], x_test[..., None]  # [N, 28, 28, 1] uint8
    unlabeled = x_train[: args.train_examples]

    strategy = keras_ssl.distribute.resolve()  # TPU, else all GPUs, else CPU
    with strategy.scope():
        encoder = keras_ssl.backbones.REGISTRY[args.backbone](input_shape=(28, 28, 1))
        model = keras_ssl.methods.SimCLR(
            encoder,
            augmenter=keras_ssl.augment.presets.simclr((28, 28, 1), crop_scale=(0.2, 1.0)),
            temperature=0.2,
        )
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate=2e-3))

    dataset = keras_ssl.datasets.make_ssl_dataset(
        unlabeled, batch_size=args.batch_size, augmenter=model.augmenter, seed=0, strategy=strategy
    )
    probe_train, probe_test = (x_train[:10000], y_train[:10000]), (x_test, y_test)
    model.fit(
        dataset,
        epochs=args.epochs,
        callbacks=[
            keras_ssl.callbacks.KNNProbe(probe_train, probe_test, k=20),
            keras_ssl.callbacks.LinearProbe(probe_train, probe_test),
            keras_ssl.callbacks.CollapseMonitor(x_test[:2048]),
        ],
    )
    path = keras_ssl.export.export_encoder(model, f"{args.out}/encoder", overwrite=True)
    print(f"Encoder exported to {path}; serve it with examples/serve_encoder.py")


if __name__ == "__main__":
    main()
