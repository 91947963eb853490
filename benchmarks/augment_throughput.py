"""Two-view augmentation throughput through tf.data: keras_ssl's SimCLR preset vs keras-cv 0.9.

Both pipelines map a SimCLR-style two-view augmentation over uint8 batches (augmentation mapped
after batching, ``num_parallel_calls=AUTOTUNE``, prefetch) and report pairs per second as the
median of several timed repeats, after a warm-up pass that is not timed.

Usage:
    python benchmarks/augment_throughput.py                   # 32x32x3 and 28x28x1
    python benchmarks/augment_throughput.py --image-size 32 --channels 3 --batch 256 --repeats 5
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_ssl.augment import presets  # noqa: E402


def keras_cv_two_views(image_size, channels, color_strength=0.5):
    """The SimCLR recipe built from keras-cv 0.9 layers (crop, flip, colour jitter, grayscale)."""
    try:
        import keras_cv
    except ImportError as error:
        raise SystemExit(
            "augment_throughput.py compares with keras-cv, an optional extra of keras_ssl; "
            'install it with: pip install -e ".[keras-cv]"'
        ) from error

    jitter = 0.8 * color_strength
    layers = [
        keras_cv.layers.RandomCropAndResize(
            target_size=(image_size, image_size),
            crop_area_factor=(0.08, 1.0),
            aspect_ratio_factor=(3 / 4, 4 / 3),
        ),
        keras_cv.layers.RandomFlip("horizontal"),
    ]
    if channels == 3:
        jitter_layer = keras_cv.layers.RandomColorJitter(
            value_range=(0, 1),
            brightness_factor=jitter,
            contrast_factor=jitter,
            saturation_factor=(0.5 - jitter / 2, 0.5 + jitter / 2),
            hue_factor=0.2 * color_strength,
        )
        layers.append(keras_cv.layers.RandomApply(jitter_layer, rate=0.8))
        grayscale = keras_cv.layers.Grayscale(output_channels=3)
        layers.append(keras_cv.layers.RandomApply(grayscale, rate=0.2))
    else:  # keras-cv's colour jitter needs RGB: brightness and contrast only, as keras_ssl does
        # (keras_cv.layers.Augmenter does not run under Keras 3, so each gets its RandomApply).
        brightness = keras_cv.layers.RandomBrightness(factor=jitter, value_range=(0, 1))
        contrast = keras_cv.layers.RandomContrast(factor=jitter, value_range=(0, 1))
        layers.append(keras_cv.layers.RandomApply(brightness, rate=0.8))
        layers.append(keras_cv.layers.RandomApply(contrast, rate=0.8))

    def augment(images):
        images = tf.cast(images, tf.float32) / 255.0
        views = []
        for _ in range(2):
            view = images
            for layer in layers:
                view = layer(view)
            views.append(view)
        return tuple(views)

    return augment


def keras_ssl_two_views(image_size, channels):
    """keras_ssl's SimCLR preset (its default: no blur below 64 pixels)."""
    augmenter = presets.simclr((image_size, image_size, channels))
    return lambda images: augmenter(images)


def measure(augment, image_size, channels, batch, repeats, steps):
    """Median pairs/second of ``augment`` mapped over batches of random uint8 images."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch * 8, image_size, image_size, channels), dtype=np.uint8)
    dataset = (
        tf.data.Dataset.from_tensor_slices(images)
        .repeat()
        .batch(batch, drop_remainder=True)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    iterator = iter(dataset)
    for _ in range(max(steps // 2, 3)):  # warm-up: tracing, thread pools, autotuning
        next(iterator)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            views = next(iterator)
        views[0].numpy()
        rates.append(steps * batch / (time.perf_counter() - start))
    return statistics.median(rates), rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=None, help="square image side")
    parser.add_argument("--channels", type=int, default=None, choices=(1, 3))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="batches per timed repeat")
    names = ("keras_ssl", "keras_cv")
    parser.add_argument("--pipelines", nargs="+", default=list(names), choices=names)
    args = parser.parse_args()
    if args.image_size is None and args.channels is None:
        configs = [(32, 3), (28, 1)]
    else:
        configs = [(args.image_size or 32, args.channels or 3)]
    builders = {"keras_ssl": keras_ssl_two_views, "keras_cv": keras_cv_two_views}
    print(
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, batch {args.batch}, "
        f"{args.repeats} repeats x {args.steps} batches"
    )
    for image_size, channels in configs:
        results = {}
        for name in args.pipelines:
            augment = builders[name](image_size, channels)
            median, rates = measure(
                augment, image_size, channels, args.batch, args.repeats, args.steps
            )
            results[name] = median
            spread = ", ".join(f"{r:.0f}" for r in rates)
            print(
                f"{image_size}x{image_size}x{channels} {name:9s} {median:9.0f} pairs/s "
                f"(repeats: {spread})"
            )
        if len(results) == 2:
            print(
                f"{image_size}x{image_size}x{channels} speed-up keras_ssl / keras_cv: "
                f"{results['keras_ssl'] / results['keras_cv']:.1f}x"
            )


if __name__ == "__main__":
    main()
