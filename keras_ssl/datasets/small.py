"""Small labelled image sets made offline from data that ships with installed packages.

They stand in for "a user's own small data set" (a few thousand 28x28 images, 10 classes) when
checking that a method's defaults learn on data other than Fashion-MNIST. Nothing is
downloaded and no array is stored: every image is generated deterministically from ``seed``.

- :func:`load_digits`: scikit-learn's 1,797 handwritten 8x8 digits (``sklearn.datasets
  .load_digits``, UCI optdigits), each drawn into a 28x28 image with a random affine warp
  (scale, rotation, shear, position), stroke weight and noise. Training and test images come
  from disjoint source digits, so a test image is never a warped copy of a training digit.
- :func:`load_glyphs`: 10 capital letters rendered from the TrueType fonts matplotlib ships
  (DejaVu, STIX, Computer Modern; 20+ faces) with a random face, stroke, scale, rotation,
  shear, position, contrast and noise; ``channels=3`` also draws random foreground and
  background colours (colour is then a nuisance, the letter is the class).

Both return ``uint8`` images ``[N, size, size, channels]`` in ``[0, 255]`` and ``int64``
labels, as :func:`keras_ssl.datasets.fashion_mnist.load_data` does (plus the channel axis).
"""

import functools
import os

import numpy as np

from keras_ssl.validation import check_in_range, check_int

#: The letters :func:`load_glyphs` draws; the label of ``GLYPH_CLASSES[i]`` is ``i``.
GLYPH_CLASSES = ("A", "C", "E", "F", "H", "K", "M", "R", "S", "X")

#: matplotlib's font files :func:`load_glyphs` draws from (those present are used).
GLYPH_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
    "cmti10.ttf",
)

#: Side in pixels of the upright glyph templates that are warped into the images.
_TEMPLATE_SIDE = 64
#: Output images are drawn at this many samples per pixel side, then box-averaged.
_SUPERSAMPLE = 2
#: Images warped per NumPy pass (bounds the memory of the sampling grids).
_CHUNK = 256


def load_digits(train_examples=4000, test_examples=1000, image_size=28, test_fraction=0.2, seed=0):
    """Handwritten digits (scikit-learn's 8x8 set) drawn into larger images with random warps.

    The 1,797 source digits are split per class into training and test sources
    (``test_fraction`` of each class to test); each output image picks a source of its split
    (every source used equally often, in a seeded order) and draws it with a random affine
    warp: the digit's 8x8 box becomes 45-80% of the image side, rotated by up to 15 degrees,
    sheared by up to 0.2, moved by up to 12% of the side; then a random stroke weight (gamma
    0.5-1.6 on the intensities), contrast 0.65-1 and Gaussian noise (sigma up to 6% of the
    range). Bilinear sampling on a 2x supersampled grid, box-averaged down.

    Args:
        train_examples: number of training images (>= 10).
        test_examples: number of test images (>= 10).
        image_size: side of the square output images in pixels (>= 8).
        test_fraction: share of the source digits, per class, reserved for test images, in
            ``(0, 1)``.
        seed: integer seed; the same arguments always give the same arrays.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``uint8`` images ``[N, image_size,
        image_size, 1]`` and ``int64`` labels in ``[0, 10)``.

    Raises:
        ValueError: for counts below 10, ``image_size < 8``, a ``test_fraction`` outside
            ``(0, 1)`` or a seed that is not a non-negative integer.
    """
    train_examples, test_examples, image_size, seed = _check_common(
        train_examples, test_examples, image_size, seed, minimum_size=8
    )
    check_in_range(
        test_fraction,
        "test_fraction",
        0,
        1,
        fix="pass e.g. test_fraction=0.2 (a fifth of each class's source digits for testing).",
        low_open=True,
        high_open=True,
    )
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as error:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError(
            "load_digits needs scikit-learn, which ships the 8x8 digits. Fix: pip install "
            "scikit-learn."
        ) from error
    digits = sklearn_digits()
    sources = digits.images.astype(np.float32) / 16.0
    # A 1-pixel zero border so that bilinear sampling fades strokes out at the box edge.
    sources = np.pad(sources, ((0, 0), (1, 1), (1, 1)))
    labels = digits.target.astype(np.int64)
    train_ids, test_ids = split_sources(labels, test_fraction, seed)
    splits = []
    for index, (ids, count) in enumerate(((train_ids, train_examples), (test_ids, test_examples))):
        split_rng = np.random.default_rng([seed, 1 + index])
        chosen = _balanced_choice(ids, labels[ids], count, split_rng)
        images = _draw_digits(sources[chosen], image_size, split_rng)
        splits.append((images, labels[chosen]))
    return tuple(splits)


def load_glyphs(train_examples=4000, test_examples=1000, image_size=28, channels=1, seed=0):
    """Ten capital letters (:data:`GLYPH_CLASSES`) rendered from matplotlib's TrueType fonts.

    Each image draws a font face (:data:`GLYPH_FONTS`, those installed) and a stroke weight
    (0-3 px of outline at 64-px template size), then warps the upright letter: its height
    becomes 45-85% of the image side, rotated by up to 20 degrees, sheared by up to 0.25,
    aspect ratio 0.8-1.25, moved by up to 12% of the side. Gray images (``channels=1``) are a
    light letter (intensity 0.55-1) on a dark background (0-0.25); colour images draw random
    RGB foreground and background colours whose luma differs by at least 0.3. Gaussian noise
    with sigma up to 6% of the range is added last. Training and test images are drawn
    independently from the same distribution (different seeded streams). Classes are balanced
    (equal counts up to one image).

    Args:
        train_examples: number of training images (>= 10).
        test_examples: number of test images (>= 10).
        image_size: side of the square output images in pixels (>= 8).
        channels: 1 (gray) or 3 (RGB with random colours).
        seed: integer seed; the same arguments always give the same arrays.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``uint8`` images ``[N, image_size,
        image_size, channels]`` and ``int64`` labels in ``[0, 10)``.

    Raises:
        ValueError: for counts below 10, ``image_size < 8``, ``channels`` other than 1 or 3,
            or a seed that is not a non-negative integer.
        RuntimeError: if none of :data:`GLYPH_FONTS` is installed with matplotlib.
    """
    train_examples, test_examples, image_size, seed = _check_common(
        train_examples, test_examples, image_size, seed, minimum_size=8
    )
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(
            f"`channels` must be 1 or 3; received {channels!r}. Fix: pass channels=1 for gray "
            "letters or channels=3 for letters in random colours."
        )
    templates = _glyph_templates()  # [fonts, strokes, classes, side, side] in [0, 1]
    splits = []
    for index, count in enumerate((train_examples, test_examples)):
        rng = np.random.default_rng([seed, 11 + index])
        labels = rng.permutation(np.arange(count) % len(GLYPH_CLASSES)).astype(np.int64)
        fonts = rng.integers(0, templates.shape[0], count)
        strokes = rng.integers(0, templates.shape[1], count)
        masks = _warp(
            templates[fonts, strokes, labels],
            image_size,
            rng,
            box_fraction=(0.45, 0.85),
            rotation_degrees=20.0,
            shear=0.25,
            aspect=(0.8, 1.25),
            shift_fraction=0.12,
        )
        masks = masks[..., None]
        if channels == 1:
            background = rng.uniform(0.0, 0.25, (count, 1, 1, 1))
            foreground = rng.uniform(0.55, 1.0, (count, 1, 1, 1))
        else:
            foreground, background = _colour_pairs(count, rng)
        images = background + (foreground - background) * masks
        splits.append((_finish(images, rng), labels))
    return tuple(splits)


#: The small data sets by name (``load_data(name)``; benchmarks and tests loop over them).
LOADERS = {"digits": load_digits, "glyphs": load_glyphs}


def load_data(name, **kwargs):
    """Loads a small data set by name: ``"digits"`` (:func:`load_digits`) or ``"glyphs"``
    (:func:`load_glyphs`).

    Args:
        name: a key of :data:`LOADERS`.
        **kwargs: passed to the loader.

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` as the loader returns it.

    Raises:
        ValueError: for an unknown name (the message lists the known ones), or the loader's
            own errors.
    """
    if name not in LOADERS:
        raise ValueError(
            f"Unknown small data set {name!r}; expected one of {sorted(LOADERS)}. Fix: pass "
            "name='digits' or name='glyphs'."
        )
    return LOADERS[name](**kwargs)


# ----------------------------------------------------------------------------- helpers
def split_sources(labels, test_fraction, seed):
    """Splits source indices per class into disjoint training and test sets.

    Args:
        labels: ``[N]`` integer class of each source image.
        test_fraction: share of each class (rounded, at least one) that goes to test.
        seed: integer seed of the per-class permutations.

    Returns:
        ``(train_ids, test_ids)``: sorted ``int64`` index arrays that partition ``range(N)``.
    """
    rng = np.random.default_rng([seed, 0])
    train_ids, test_ids = [], []
    for label in np.unique(labels):
        ids = rng.permutation(np.flatnonzero(labels == label))
        cut = max(1, int(round(len(ids) * test_fraction)))
        test_ids.append(ids[:cut])
        train_ids.append(ids[cut:])
    return np.sort(np.concatenate(train_ids)), np.sort(np.concatenate(test_ids))


def _check_common(train_examples, test_examples, image_size, seed, minimum_size):
    fix_count = "pass a number of images >= 10 (e.g. 4000 training and 1000 test images)."
    train_examples = check_int(train_examples, "train_examples", 10, fix_count)
    test_examples = check_int(test_examples, "test_examples", 10, fix_count)
    image_size = check_int(
        image_size, "image_size", minimum_size, f"pass a side >= {minimum_size}, e.g. 28."
    )
    seed = check_int(seed, "seed", 0, "pass a non-negative integer seed, e.g. seed=0.")
    return train_examples, test_examples, image_size, seed


def _balanced_choice(ids, labels, count, rng):
    """``count`` entries of ``ids``, classes as equal as possible, each source reused equally
    often within its class (cycling through a seeded permutation), in a seeded order."""
    classes = np.unique(labels)
    per_class = np.full(len(classes), count // len(classes))
    per_class[rng.permutation(len(classes))[: count % len(classes)]] += 1
    chosen = []
    for label, n in zip(classes, per_class):
        members = rng.permutation(ids[labels == label])
        chosen.append(np.resize(members, n))
    return rng.permutation(np.concatenate(chosen))


def _draw_digits(sources, image_size, rng):
    masks = _warp(
        sources,
        image_size,
        rng,
        box_fraction=(0.45, 0.8),
        rotation_degrees=15.0,
        shear=0.2,
        aspect=(0.9, 1.1),
        shift_fraction=0.12,
    )
    count = len(sources)
    gamma = rng.uniform(0.5, 1.6, (count, 1, 1))
    contrast = rng.uniform(0.65, 1.0, (count, 1, 1))
    images = contrast * np.power(np.clip(masks, 0.0, 1.0), gamma)
    return _finish(images[..., None], rng)


def _finish(images, rng):
    """Adds Gaussian noise (sigma ~ U(0, 0.06) per image) and quantises to uint8."""
    sigma = rng.uniform(0.0, 0.06, (len(images),) + (1,) * (images.ndim - 1))
    noisy = images + sigma * rng.standard_normal(images.shape)
    return np.round(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.uint8)


def _warp(sources, image_size, rng, box_fraction, rotation_degrees, shear, aspect, shift_fraction):
    """Draws each source ``[n, h, w]`` (square) into an ``image_size`` image with a random
    affine map; returns float32 ``[n, image_size, image_size]``.

    The source's square is mapped to a box of side ``box_fraction`` of the image (times
    ``sqrt(aspect)`` in width and ``1 / sqrt(aspect)`` in height), sheared, rotated and centred
    at the image centre plus a shift of up to ``shift_fraction`` of the side per axis. Pixels
    are sampled bilinearly (zero outside the source) on a supersampled grid and box-averaged.
    """
    count, side = len(sources), sources.shape[1]
    box = rng.uniform(*box_fraction, count) * image_size
    ratio = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1]), count))
    angle = np.deg2rad(rng.uniform(-rotation_degrees, rotation_degrees, count))
    slant = rng.uniform(-shear, shear, count)
    shift = rng.uniform(-shift_fraction, shift_fraction, (count, 2)) * image_size
    # Forward map, source pixel units (centred) -> output pixel units (centred):
    # rotation @ shear @ diag(scale_x, scale_y).
    scale_x = box * np.sqrt(ratio) / side
    scale_y = box / np.sqrt(ratio) / side
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shearing = np.zeros((count, 2, 2))
    shearing[:, 0, 0] = shearing[:, 1, 1] = 1.0
    shearing[:, 0, 1] = slant
    scaling = np.zeros((count, 2, 2))
    scaling[:, 0, 0], scaling[:, 1, 1] = scale_x, scale_y
    forward = rotation @ shearing @ scaling  # acts on (x, y) column vectors
    inverse = np.linalg.inv(forward)
    fine = image_size * _SUPERSAMPLE
    grid = (np.arange(fine) + 0.5) / _SUPERSAMPLE - image_size / 2.0  # pixel centres
    xs, ys = np.meshgrid(grid, grid)  # [fine, fine]
    output = np.empty((count, image_size, image_size), np.float32)
    for start in range(0, count, _CHUNK):  # bounded memory; the draws above fix the result
        part = slice(start, start + _CHUNK)
        points = np.stack([xs, ys], -1)[None] - shift[part, None, None, :]  # [n, fine, fine, 2]
        source_points = np.einsum("nij,nhwj->nhwi", inverse[part], points) + side / 2.0 - 0.5
        sampled = _bilinear(sources[part], source_points[..., 0], source_points[..., 1])
        sampled = sampled.reshape(-1, image_size, _SUPERSAMPLE, image_size, _SUPERSAMPLE)
        output[part] = sampled.mean(axis=(2, 4))
    return output


def _bilinear(sources, x, y):
    """Bilinear samples of ``sources[n]`` at float pixel positions ``x, y`` ``[n, H, W]``
    (pixel centres at integers), zero outside the source."""
    count, height, width = sources.shape
    padded = np.pad(sources, ((0, 0), (1, 1), (1, 1)))
    x = np.clip(x + 1.0, 0.0, width + 1.0)
    y = np.clip(y + 1.0, 0.0, height + 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), width)
    y0 = np.minimum(np.floor(y).astype(np.int64), height)
    fx, fy = x - x0, y - y0
    n = np.arange(count)[:, None, None]

    def at(yy, xx):
        return padded[n, yy, xx]

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def _colour_pairs(count, rng):
    """Random RGB foreground/background colours ``[count, 1, 1, 3]`` whose luma differs by at
    least 0.3 (redrawn until they do; which one is lighter is random)."""
    weights = np.array([0.299, 0.587, 0.114])
    foreground = rng.uniform(0.0, 1.0, (count, 3))
    background = rng.uniform(0.0, 1.0, (count, 3))
    while True:
        bad = np.abs((foreground - background) @ weights) < 0.3
        if not bad.any():
            break
        foreground[bad] = rng.uniform(0.0, 1.0, (int(bad.sum()), 3))
        background[bad] = rng.uniform(0.0, 1.0, (int(bad.sum()), 3))
    return foreground[:, None, None, :], background[:, None, None, :]


def _font_paths():
    import matplotlib

    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    paths = [os.path.join(folder, name) for name in GLYPH_FONTS]
    paths = [path for path in paths if os.path.exists(path)]
    if not paths:
        raise RuntimeError(
            f"load_glyphs found none of its fonts in {folder!r}; expected matplotlib's bundled "
            f"TrueType fonts such as {GLYPH_FONTS[0]}. Fix: reinstall matplotlib "
            "(pip install --force-reinstall matplotlib)."
        )
    return tuple(paths)


@functools.lru_cache(maxsize=2)
def _glyph_templates_for(paths):
    from PIL import Image, ImageDraw, ImageFont

    side = _TEMPLATE_SIDE
    strokes = (0, 1, 2, 3)
    templates = np.zeros((len(paths), len(strokes), len(GLYPH_CLASSES), side, side), np.float32)
    for f, path in enumerate(paths):
        font = ImageFont.truetype(path, size=int(side * 0.75))
        for s, stroke in enumerate(strokes):
            for c, letter in enumerate(GLYPH_CLASSES):
                canvas = Image.new("L", (2 * side, 2 * side), 0)
                ImageDraw.Draw(canvas).text(
                    (side // 2, side // 4),
                    letter,
                    fill=255,
                    font=font,
                    stroke_width=stroke,
                    stroke_fill=255,
                )
                ink = np.asarray(canvas, np.float32) / 255.0
                rows, cols = np.flatnonzero(ink.max(1) > 0), np.flatnonzero(ink.max(0) > 0)
                if len(rows) == 0:
                    raise RuntimeError(
                        f"Font {path!r} drew no pixels for {letter!r}; expected a Latin "
                        "font. Fix: reinstall matplotlib, or report the font."
                    )
                crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
                # Scale the letter's taller side to the template side, keep its aspect.
                height, width = crop.shape
                factor = (side - 2) / max(height, width)
                size = (max(1, round(width * factor)), max(1, round(height * factor)))
                resized = Image.fromarray(np.uint8(crop * 255)).resize(size, Image.LANCZOS)
                top = (side - size[1]) // 2
                left = (side - size[0]) // 2
                block = np.asarray(resized, np.float32) / 255.0
                templates[f, s, c, top : top + size[1], left : left + size[0]] = block
    return templates


def _glyph_templates():
    return _glyph_templates_for(_font_paths())
