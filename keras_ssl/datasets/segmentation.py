"""Segmentation canvases made from real garments: Fashion-MNIST items painted on a larger canvas.

Each pixel is labelled with its garment's class + 1 where the garment's intensity exceeds a
threshold, and 0 (background) elsewhere. Garments are painted in order: a later garment's
foreground pixels cover earlier ones; its background pixels leave what is below unchanged.
"""

import numpy as np

from keras_ssl.validation import check_int


def paint_canvas(garments, labels, positions, canvas_size=56, threshold=32):
    """Paints garments on a black canvas and labels each pixel.

    Args:
        garments: ``uint8`` ``[k, h, w]`` garment images, in paint order.
        labels: ``[k]`` garment classes (0-based); pixels get ``label + 1``.
        positions: ``[k, 2]`` top-left ``(row, column)`` of each garment on the canvas.
        canvas_size: side of the square canvas.
        threshold: a garment pixel is foreground where its value is ``> threshold``.

    Returns:
        ``(image, mask)``: ``uint8`` ``[canvas_size, canvas_size]`` each; mask 0 is background.

    Raises:
        ValueError: for mismatched lengths or a garment that does not fit on the canvas.
    """
    garments = np.asarray(garments)
    labels = np.asarray(labels).reshape(-1)
    positions = np.asarray(positions).reshape(-1, 2)
    if garments.ndim != 3 or not len(garments) == len(labels) == len(positions):
        raise ValueError(
            f"Expected garments [k, h, w] with k labels and k positions; received garments "
            f"{garments.shape}, {len(labels)} labels and {len(positions)} positions. Fix: pass "
            "one label and one (row, column) per garment."
        )
    image = np.zeros((canvas_size, canvas_size), np.uint8)
    mask = np.zeros((canvas_size, canvas_size), np.uint8)
    height, width = garments.shape[1:]
    for garment, label, (row, column) in zip(garments, labels, positions):
        if row < 0 or column < 0 or row + height > canvas_size or column + width > canvas_size:
            raise ValueError(
                f"A {height}x{width} garment at ({row}, {column}) does not fit on a "
                f"{canvas_size}x{canvas_size} canvas; expected 0 <= row <= "
                f"{canvas_size - height}. Fix: choose positions inside the canvas."
            )
        foreground = garment > threshold
        window = (slice(row, row + height), slice(column, column + width))
        image[window][foreground] = garment[foreground]
        mask[window][foreground] = int(label) + 1
    return image, mask


def make_canvases(
    garment_images,
    garment_labels,
    num_images,
    canvas_size=56,
    garments=(2, 4),
    seed=0,
    threshold=32,
    return_draws=False,
):
    """Paints ``num_images`` canvases from a pool of garments, vectorised over the canvases.

    Each canvas draws (with ``numpy.random.default_rng(seed)``, in this order) its garment count
    uniformly in ``[garments[0], garments[1]]``, then for each of ``garments[1]`` paint slots a
    garment index into the pool, then a top-left ``(row, column)`` uniformly among the positions
    where the garment fits; slots beyond the count are unused. The result equals
    :func:`paint_canvas` on the same draws (see ``return_draws``).

    Args:
        garment_images: ``uint8`` ``[M, h, w]`` pool of garments.
        garment_labels: ``[M]`` their classes (0-based).
        num_images: number of canvases.
        canvas_size: side of the square canvases (at least the garment size).
        garments: ``(min, max)`` garments per canvas, ``1 <= min <= max``.
        seed: seed of every draw.
        threshold: foreground intensity threshold (see :func:`paint_canvas`).
        return_draws: also return ``{"counts": [N], "indices": [N, max], "positions":
            [N, max, 2]}``.

    Returns:
        ``(images, masks)``: ``uint8`` ``[N, S, S, 1]`` and ``uint8`` ``[N, S, S]`` (0 is
        background, ``class + 1`` a garment); plus the draws when ``return_draws``.

    Raises:
        ValueError: for a malformed pool, ``garments`` range, ``num_images`` or canvas size.
    """
    pool = np.asarray(garment_images)
    pool_labels = np.asarray(garment_labels).reshape(-1)
    if pool.ndim != 3 or len(pool) != len(pool_labels) or len(pool) == 0:
        raise ValueError(
            f"Expected a non-empty garment pool [M, h, w] with M labels; received images "
            f"{pool.shape} and {len(pool_labels)} labels. Fix: pass Fashion-MNIST style "
            "images (N, 28, 28) and their labels."
        )
    low, high = _check_range(garments)
    check_int(num_images, "num_images", fix="pass e.g. 1000.")
    height, width = pool.shape[1:]
    if canvas_size < max(height, width):
        raise ValueError(
            f"`canvas_size` {canvas_size} is smaller than the {height}x{width} garments; "
            f"expected at least {max(height, width)}. Fix: pass canvas_size=56."
        )
    rng = np.random.default_rng(seed)
    counts = rng.integers(low, high + 1, num_images)
    indices = rng.integers(0, len(pool), (num_images, high))
    rows = rng.integers(0, canvas_size - height + 1, (num_images, high))
    columns = rng.integers(0, canvas_size - width + 1, (num_images, high))
    images = np.zeros((num_images, canvas_size, canvas_size), np.uint8)
    masks = np.zeros((num_images, canvas_size, canvas_size), np.uint8)
    offsets_r = np.arange(height)[None, :, None]
    offsets_c = np.arange(width)[None, None, :]
    for slot in range(high):
        used = np.flatnonzero(counts > slot)
        garment = pool[indices[used, slot]]
        foreground = garment > threshold
        n = used[:, None, None]
        r = rows[used, slot][:, None, None] + offsets_r
        c = columns[used, slot][:, None, None] + offsets_c
        images[n, r, c] = np.where(foreground, garment, images[n, r, c])
        label = (pool_labels[indices[used, slot]].astype(np.int64) + 1)[:, None, None]
        masks[n, r, c] = np.where(foreground, label, masks[n, r, c]).astype(np.uint8)
    if not return_draws:
        return images[..., None], masks
    positions = np.stack([rows, columns], axis=-1)
    draws = {"counts": counts, "indices": indices, "positions": positions}
    return images[..., None], masks, draws


def fashion_mnist_canvases(
    split="train",
    num_images=1000,
    canvas_size=56,
    garments=(2, 4),
    seed=0,
    data_dir=None,
    threshold=32,
):
    """The built-in segmentation set: Fashion-MNIST garments on ``canvas_size`` canvases.

    Garments come from the matching Fashion-MNIST split (train canvases from training images,
    test canvases from test images), read by :func:`keras_ssl.datasets.fashion_mnist.load_data`
    with its offline fallbacks (no download). Canvases are made by :func:`make_canvases`, so the
    set is a deterministic function of the split, sizes and ``seed``; 11 classes: 0 background
    and ``1 + c`` for Fashion-MNIST class ``c``.

    Args:
        split: ``"train"`` or ``"test"``.
        num_images: number of canvases.
        canvas_size: canvas side in pixels.
        garments: ``(min, max)`` garments per canvas.
        seed: seed of the draws.
        data_dir: optional folder with the Fashion-MNIST IDX files (``load_data(path=...)``).
        threshold: foreground intensity threshold.

    Returns:
        ``(images, masks)``: ``uint8`` ``[N, S, S, 1]`` and ``uint8`` ``[N, S, S]``.

    Raises:
        ValueError: for an unknown split or bad sizes.
    """
    if split not in ("train", "test"):
        raise ValueError(
            f"`split` must be 'train' or 'test'; received {split!r}. Fix: pass split='train'."
        )
    from keras_ssl.datasets.fashion_mnist import load_data

    train, test = load_data(path=data_dir, download=False)
    pool, labels = train if split == "train" else test
    return make_canvases(pool, labels, num_images, canvas_size, garments, seed, threshold)


def load_segmentation_folder(path, image_size=None, channels=None):
    """Loads image/mask pairs ``path/images/<name>.png`` + ``path/masks/<name>.png``.

    Pairs are matched by file stem and returned sorted by it. A mask is read as stored (its
    palette indices for palette PNGs, its grey level otherwise): each value is a class id.

    Args:
        path: folder holding ``images/`` and ``masks/``.
        image_size: ``(height, width)`` to resize to (images bilinearly, masks by nearest
            neighbour); ``None`` requires all pairs to share one size.
        channels: 1 or 3 to convert the images, ``None`` to keep the first image's mode.

    Returns:
        ``(images, masks)``: ``uint8`` ``[N, H, W, C]`` and ``uint8`` ``[N, H, W]``.

    Raises:
        ValueError: for missing folders, unpaired files, a colour mask or mismatched sizes.
    """
    import os

    from PIL import Image

    folders = [os.path.join(path, name) for name in ("images", "masks")]
    if not all(os.path.isdir(folder) for folder in folders):
        raise ValueError(
            f"Segmentation folder {str(path)!r} must hold 'images/' and 'masks/' subfolders; "
            f"found {sorted(os.listdir(path)) if os.path.isdir(path) else 'no such folder'}. "
            "Fix: put images/<name>.png and masks/<name>.png side by side."
        )
    stems = [
        {os.path.splitext(f)[0]: os.path.join(folder, f) for f in os.listdir(folder)}
        for folder in folders
    ]
    unpaired = sorted(set(stems[0]) ^ set(stems[1]))
    if unpaired or not stems[0]:
        raise ValueError(
            f"Images and masks in {str(path)!r} must pair up by name; received unpaired names "
            f"{unpaired[:5]} ({len(stems[0])} images, {len(stems[1])} masks). Fix: give each "
            "image a mask with the same file stem."
        )
    images, masks = [], []
    for stem in sorted(stems[0]):
        image = Image.open(stems[0][stem])
        mode = {1: "L", 3: "RGB"}.get(channels, "L" if image.mode in ("L", "1") else "RGB")
        image = image.convert(mode)
        mask = Image.open(stems[1][stem])
        if mask.mode not in ("L", "P", "1", "I;16", "I"):
            raise ValueError(
                f"Mask {stems[1][stem]!r} has mode {mask.mode}; expected a single-channel "
                "(grey or palette) PNG of class ids. Fix: save masks with one channel."
            )
        if image.size != mask.size:
            raise ValueError(
                f"Image and mask {stem!r} differ in size: {image.size} vs {mask.size}; expected "
                "one size. Fix: save the mask at the image's size."
            )
        if image_size is not None:
            size = (int(image_size[1]), int(image_size[0]))
            image = image.resize(size, Image.BILINEAR)
            mask = mask.resize(size, Image.NEAREST)
        images.append(np.asarray(image, np.uint8).reshape(image.size[1], image.size[0], -1))
        masks.append(np.asarray(mask).astype(np.uint8))
    sizes = sorted({m.shape for m in masks})
    if len(sizes) > 1:
        raise ValueError(
            f"Pairs in {str(path)!r} have different sizes {sizes[:4]}; expected one size. "
            "Fix: pass image_size=(height, width) to resize them."
        )
    return np.stack(images), np.stack(masks)


def load_tfds_segmentation(
    name="oxford_iiit_pet",
    split="train",
    image_size=(128, 128),
    data_dir=None,
    download=True,
    image_key="image",
    mask_key="segmentation_mask",
    mask_offset=0,
):
    """Loads a TFDS segmentation set (``image`` + ``segmentation_mask`` features) as arrays.

    Images are resized bilinearly and masks by nearest neighbour to ``image_size``. For
    ``oxford_iiit_pet`` the stored mask values are 1 (pet), 2 (background), 3 (border); pass
    ``mask_offset=-1`` for 0-based class ids.

    Args:
        name: TFDS name, e.g. ``"oxford_iiit_pet"``.
        split: TFDS split, slicing allowed.
        image_size: ``(height, width)`` of the returned arrays.
        data_dir: TFDS data folder (``None``: TFDS' default).
        download: whether TFDS may download and prepare the set.
        image_key: image feature name.
        mask_key: mask feature name.
        mask_offset: added to every mask value.

    Returns:
        ``(images, masks)``: ``uint8`` ``[N, H, W, C]`` and ``uint8`` ``[N, H, W]``.

    Raises:
        ValueError: for missing features, an unprepared set with ``download=False`` or a bad
            ``image_size``.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if not (isinstance(image_size, (tuple, list)) and len(image_size) == 2):
        raise ValueError(
            f"`image_size` must be (height, width); received {image_size!r}. Fix: pass e.g. "
            "(128, 128)."
        )
    builder = tfds.builder(name, data_dir=data_dir)
    missing = [key for key in (image_key, mask_key) if key not in builder.info.features]
    if missing:
        raise ValueError(
            f"TFDS dataset {name!r} has no feature(s) {missing}; expected image and mask "
            f"features, found {sorted(builder.info.features.keys())}. Fix: pass image_key= "
            "and mask_key=."
        )
    if download:
        builder.download_and_prepare()
    elif not builder.is_prepared():
        raise ValueError(
            f"TFDS dataset {name!r} is not prepared in {builder.data_dir_root} and "
            "download=False; expected a prepared copy. Fix: pass download=True or data_dir=."
        )
    size = [int(image_size[0]), int(image_size[1])]
    images, masks = [], []
    for example in builder.as_dataset(split=split, shuffle_files=False):
        image = tf.image.resize(example[image_key], size, method="bilinear")
        mask = tf.image.resize(example[mask_key], size, method="nearest")
        images.append(np.clip(np.round(image.numpy()), 0, 255).astype(np.uint8))
        masks.append((mask.numpy()[..., 0].astype(np.int64) + int(mask_offset)).astype(np.uint8))
    return np.stack(images), np.stack(masks)


def _check_range(garments):
    valid = (
        isinstance(garments, (tuple, list))
        and len(garments) == 2
        and all(isinstance(g, int) and not isinstance(g, bool) for g in garments)
        and 1 <= garments[0] <= garments[1]
    )
    if not valid:
        raise ValueError(
            f"`garments` must be (min, max) ints with 1 <= min <= max; received {garments!r}. "
            "Fix: pass e.g. garments=(2, 4)."
        )
    return int(garments[0]), int(garments[1])
