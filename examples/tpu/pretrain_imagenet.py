"""Pretrain any keras_ssl method on ImageNet (or any TFDS image dataset) on a Cloud TPU.

    python examples/tpu/pretrain_imagenet.py --tpu=local --method=simclr \
        --data_dir=gs://BUCKET/tensorflow_datasets --workdir=gs://BUCKET/runs/simclr_r50 \
        --backbone=resnet50 --batch_size=4096 --epochs=100

The images stream from the TFDS ``data_dir`` (a GCS bucket on Cloud TPU; TFDS reads ``gs://``
paths itself): each image is decoded, resized so its short side is ``--load_size`` and centre-
cropped square in ``tf.data`` on the host, then batched and augmented (the method's preset,
every image its own random draws) in parallel with the TPU steps. The step is XLA-compiled with
``--steps_per_execution`` steps per host call, in bfloat16 (``precision="auto"`` picks it on
TPUs), with BatchNorm synchronised across replicas. LARS with linear learning-rate scaling
(``--learning_rate`` per 256 images) and warm-up + cosine decay, as SimCLR and BYOL train.

Checkpoints (``BackupAndRestore``: rerun the same command to resume after a preemption) and
TensorBoard logs go under ``--workdir``, which may be a ``gs://`` path; the encoder is exported
to ``WORKDIR/encoder`` at the end. ``--tpu=""`` runs the same code on the local GPUs or CPU
(``--dataset`` and ``--image_size`` small for a dry run).
"""

import argparse
import os
import tempfile

import keras_ssl  # first: keeps TensorFlow start-up notices off the console

# isort: split
import keras
import tensorflow as tf

from keras_ssl import config as config_lib
from keras_ssl import experiment
from keras_ssl.optimizers import LARS, WarmupCosine


def load_images(dataset, split, data_dir, load_size, download):
    """Unbatched ``(uint8 [load_size, load_size, 3], label)`` pairs streamed from TFDS."""

    def square(image, label):
        shape = tf.shape(image)[:2]
        scale = load_size / tf.cast(tf.reduce_min(shape), tf.float32)
        size = tf.cast(tf.math.ceil(tf.cast(shape, tf.float32) * scale), tf.int32)
        image = tf.image.resize(image, size, antialias=True)
        image = tf.image.resize_with_crop_or_pad(image, load_size, load_size)
        if image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    images = keras_ssl.datasets.load_tfds(dataset, split, data_dir=data_dir, download=download)
    return images.map(square, num_parallel_calls=tf.data.AUTOTUNE)


def export(model, path):
    """``keras_ssl.export.export_encoder`` to ``path``, which may be on GCS.

    The SavedModel is written locally first (the export is atomic there) and then copied; a
    ``gs://`` destination is replaced only after the local export is complete.
    """
    if "://" not in path:
        return keras_ssl.export.export_encoder(model, path, overwrite=True)
    with tempfile.TemporaryDirectory() as local:
        source = keras_ssl.export.export_encoder(model, os.path.join(local, "encoder"))
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)
        for folder, _, files in tf.io.gfile.walk(source):
            target = path + folder[len(source) :]
            tf.io.gfile.makedirs(target)
            for name in files:
                tf.io.gfile.copy(os.path.join(folder, name), f"{target}/{name}")
    return path


def build(args, strategy, steps_per_epoch):
    """The method with its backbone, preset augmenter and LARS, in the strategy's scope."""
    config = config_lib.default_config()
    config.method, config.backbone = args.method, args.backbone
    config.augment.preset = args.preset or config.augment.preset
    image_shape = (args.image_size, args.image_size, 3)
    with strategy.scope():
        model = experiment.build_model(config, image_shape, strategy.num_replicas_in_sync)
        total = steps_per_epoch * args.epochs
        schedule = WarmupCosine(
            args.learning_rate * args.batch_size / 256,
            total,
            warmup_steps=int(args.warmup_epochs * steps_per_epoch),
        )
        model.compile(
            optimizer=LARS(schedule, momentum=0.9, weight_decay=args.weight_decay),
            steps_per_execution=args.steps_per_execution,
            jit_compile=True,
        )
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tpu", default="local", help='TPU name, "local" on a TPU VM, "" none')
    parser.add_argument("--method", default="simclr", choices=sorted(keras_ssl.methods.REGISTRY))
    parser.add_argument(
        "--backbone", default="resnet50", choices=sorted(keras_ssl.backbones.REGISTRY)
    )
    parser.add_argument("--preset", default=None, help="augmentation preset (default: simclr)")
    parser.add_argument("--dataset", default="imagenet2012")
    parser.add_argument("--split", default="train")
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir, e.g. gs://BUCKET/tfds")
    parser.add_argument("--download", action="store_true", help="let TFDS prepare the data")
    parser.add_argument("--num_examples", type=int, default=1281167, help="examples per epoch")
    parser.add_argument("--workdir", required=True, help="checkpoints, logs, export (gs:// ok)")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--load_size", type=int, default=None, help="default: 8/7 image_size")
    parser.add_argument("--batch_size", type=int, default=4096, help="global batch")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--learning_rate", type=float, default=0.3, help="per 256 images")
    parser.add_argument("--weight_decay", type=float, default=1e-6)
    parser.add_argument("--warmup_epochs", type=float, default=10)
    parser.add_argument("--steps_per_execution", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    strategy = keras_ssl.distribute.resolve(tpu=args.tpu or None)
    keras_ssl.precision.set_policy("auto", strategy)  # bfloat16 on TPUs
    steps_per_epoch = args.num_examples // args.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"--num_examples={args.num_examples} is smaller than --batch_size="
            f"{args.batch_size}; expected at least one batch per epoch. Fix: lower --batch_size."
        )
    model = build(args, strategy, steps_per_epoch)
    images = load_images(
        args.dataset,
        args.split,
        args.data_dir,
        args.load_size or args.image_size * 8 // 7,
        args.download,
    )
    dataset = keras_ssl.datasets.make_ssl_dataset(
        images,
        batch_size=args.batch_size,
        augmenter=model.augmenter,
        seed=args.seed,
        repeat=True,
        strategy=strategy,
    )
    history = model.fit(
        dataset,
        epochs=args.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=[
            keras.callbacks.BackupAndRestore(os.path.join(args.workdir, "backup")),
            keras.callbacks.TensorBoard(os.path.join(args.workdir, "logs")),
            keras_ssl.callbacks.StopOnNonFinite(),
        ],
        verbose=2,
    )
    path = export(model, os.path.join(args.workdir, "encoder"))
    print(f"Exported the encoder to {path}")
    return model, history.history


if __name__ == "__main__":
    main()
