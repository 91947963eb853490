"""Images from a local folder: one subfolder per class, or a flat folder of unlabelled images."""

import os
import pathlib
import struct

import numpy as np
import tensorflow as tf
from absl import logging

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8"


def load_image_folder(directory, image_size=None, channels=3, as_numpy=False):
    """Loads PNG/JPEG images from ``directory`` as ``uint8`` tensors.

    Two layouts are understood. With subfolders, each subfolder is a class: labels are the
    indices of the sorted subfolder names, and images are found recursively inside them. Without
    subfolders, the images directly in ``directory`` are loaded without labels. Files with other
    extensions and hidden entries (names starting with ``.``) are ignored. Images come in sorted
    path order, class by class; shuffle downstream.

    Args:
        directory: the folder.
        image_size: optional ``(height, width)``; images are resized to it (bilinear with
            antialiasing, rounded back to ``uint8``). Without it all images must share one size.
        channels: 1 (grayscale), 3 (RGB) or 4 (RGBA); images are converted to it.
        as_numpy: return NumPy arrays instead of a ``tf.data.Dataset``.

    Returns:
        ``(data, class_names)``. ``class_names`` is the sorted list of subfolder names, or None
        for a flat folder. ``data`` is a ``tf.data.Dataset`` of ``(image, label)`` (``uint8``
        ``[H, W, channels]``, ``int32`` scalar), or of images alone for a flat folder; with
        ``as_numpy`` it is ``(images, labels)``: ``uint8`` ``[N, H, W, channels]`` and
        ``int32`` ``[N]`` (``labels`` is None for a flat folder).

    Raises:
        ValueError: for a missing or empty folder, a folder mixing images and class
            subfolders, an unreadable image, bad ``image_size``/``channels``, or images of
            different sizes without ``image_size``.
    """
    _check_channels(channels)
    resize = image_size is not None
    if resize:
        image_size = _check_image_size(image_size)
    paths, labels, class_names = list_images(directory)
    sizes = {path: _image_size(path) for path in paths}
    if not resize:
        distinct = sorted(set(sizes.values()))
        if len(distinct) > 1:
            examples = [next(p for p in paths if sizes[p] == size) for size in distinct[:2]]
            raise ValueError(
                f"Images in {directory} have different sizes: received {distinct[0]} "
                f"({examples[0].name}) and {distinct[1]} ({examples[1].name}), "
                f"{len(distinct)} sizes in all; expected one size when image_size is None. "
                "Fix: pass image_size=(height, width) to resize them."
            )
        image_size = distinct[0]
    dataset = image_files_dataset(paths, labels, image_size, channels, resize)
    if not as_numpy:
        return dataset, class_names
    batches = list(dataset.batch(1024).as_numpy_iterator())
    if labels is None:
        return (np.concatenate(batches), None), class_names
    images, label_array = (np.concatenate(parts) for parts in zip(*batches))
    return (images, label_array), class_names


def _check_channels(channels):
    if channels not in (1, 3, 4):
        raise ValueError(
            f"`channels` must be 1, 3 or 4; received {channels!r}. Fix: pass channels=3 for RGB "
            "or channels=1 for grayscale."
        )


def _check_image_size(image_size):
    try:
        height, width = (int(size) for size in image_size)
        valid = height > 0 and width > 0 and tuple(image_size) == (height, width)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"`image_size` must be (height, width) with two positive integers; received "
            f"{image_size!r}. Fix: pass e.g. image_size=(32, 32), or None to keep the sizes."
        )
    return height, width


def _visible(entries):
    return sorted(entry for entry in entries if not entry.name.startswith("."))


def _is_image_file(path):
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(directory):
    """Lists the image files of ``directory`` in the order :func:`load_image_folder` loads them.

    The layouts, the files taken (PNG/JPEG by extension, hidden entries skipped) and the order
    are those of :func:`load_image_folder`; nothing is decoded.

    Args:
        directory: the folder (one subfolder per class, or a flat folder of images).

    Returns:
        ``(paths, labels, class_names)``: ``paths`` the ``pathlib.Path`` of every image;
        ``labels`` the class index of each (a list of ints), or None for a flat folder;
        ``class_names`` the sorted subfolder names, or None for a flat folder.

    Raises:
        ValueError: for a missing or empty folder, or one mixing images and class subfolders.
    """
    root = pathlib.Path(directory)
    if not root.is_dir():
        raise ValueError(
            f"Image folder does not exist or is not a folder: received {str(directory)!r}; "
            "expected a folder of images or of one subfolder per class. Fix: check the path."
        )
    entries = _visible(root.iterdir())
    class_dirs = [entry for entry in entries if entry.is_dir()]
    flat_images = [entry for entry in entries if _is_image_file(entry)]
    if class_dirs and flat_images:
        raise ValueError(
            f"{root} mixes images ({flat_images[0].name}, ...) with subfolders "
            f"({class_dirs[0].name}, ...); expected either one subfolder per class or only "
            "images. Fix: move the loose images into a class subfolder or elsewhere."
        )
    if not class_dirs:
        if not flat_images:
            raise ValueError(
                f"Image folder {root} is empty: received no {'/'.join(IMAGE_EXTENSIONS)} files "
                "and no subfolders; expected images or one subfolder per class. Fix: point "
                "`directory` at the folder that holds the images."
            )
        _log_ignored(len(entries) - len(flat_images), root)
        return flat_images, None, None
    paths, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        found, ignored = _walk_images(class_dir)
        _log_ignored(ignored, class_dir)
        if not found:
            logging.warning(
                "Class folder %s holds no images; its label %d is unused.", class_dir, label
            )
        paths.extend(found)
        labels.extend([label] * len(found))
    if not paths:
        raise ValueError(
            f"Image folder {root} is empty: received class subfolders "
            f"{[d.name for d in class_dirs]} holding no {'/'.join(IMAGE_EXTENSIONS)} files; "
            "expected images inside them. Fix: add images, or point `directory` elsewhere."
        )
    return paths, labels, [class_dir.name for class_dir in class_dirs]


def _walk_images(class_dir):
    found, ignored = [], 0
    for parent, dir_names, file_names in os.walk(class_dir):
        dir_names[:] = sorted(name for name in dir_names if not name.startswith("."))
        for name in sorted(file_names):
            path = pathlib.Path(parent) / name
            if not name.startswith(".") and _is_image_file(path):
                found.append(path)
            else:
                ignored += 1
    return sorted(found), ignored


def _log_ignored(count, folder):
    if count:
        logging.info(
            "Ignored %d entries in %s that are not %s files.",
            count,
            folder,
            "/".join(IMAGE_EXTENSIONS),
        )


def _image_size(path):
    """Reads ``(height, width)`` from a PNG or JPEG header without decoding the pixels."""
    with open(path, "rb") as file:
        head = file.read(24)
        if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return height, width
        if head[:2] == _JPEG_SIGNATURE:
            try:
                shape = tf.io.extract_jpeg_shape(head + file.read())
                return int(shape[0]), int(shape[1])
            except tf.errors.InvalidArgumentError:
                pass
    raise ValueError(
        f"Cannot read image {path}: received first bytes {head[:8].hex() or '(empty file)'}; "
        "expected a PNG or JPEG file. Fix: re-encode or remove the file."
    )


def image_files_dataset(paths, labels, image_size, channels=3, resize=True):
    """A ``tf.data.Dataset`` that decodes the PNG/JPEG files ``paths`` into ``uint8`` images.

    Images are decoded in the order of ``paths`` and converted to ``channels``; with ``resize``
    they are resized to ``image_size`` as :func:`load_image_folder` does (bilinear with
    antialiasing, rounded back to ``uint8``).

    Args:
        paths: the image files (``str`` or ``pathlib.Path``), e.g. from :func:`list_images`.
        labels: one integer label per path, or None for images without labels.
        image_size: ``(height, width)`` of the images produced.
        channels: 1 (grayscale), 3 (RGB) or 4 (RGBA).
        resize: resize every image to ``image_size``; when False every file must already
            have that size (the dataset raises ``InvalidArgumentError`` on another one).

    Returns:
        A dataset of ``(image, label)`` (``uint8`` ``[height, width, channels]``, ``int32``
        scalar), or of images alone when ``labels`` is None.

    Raises:
        ValueError: for bad ``image_size`` or ``channels``, or a ``labels`` of another length
            than ``paths``.
    """
    _check_channels(channels)
    height, width = _check_image_size(image_size)
    if labels is not None and len(labels) != len(paths):
        raise ValueError(
            f"`labels` must hold one label per path; received {len(labels)} labels for "
            f"{len(paths)} paths. Fix: pass labels of the same length as paths, or None."
        )

    def load(path):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, dtype=tf.uint8, expand_animations=False
        )
        if resize:
            resized = tf.image.resize(image, (height, width), method="bilinear", antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
        return tf.ensure_shape(image, (height, width, channels))

    path_strings = [str(path) for path in paths]
    if labels is None:
        dataset = tf.data.Dataset.from_tensor_slices(path_strings)
        return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = tf.data.Dataset.from_tensor_slices((path_strings, np.asarray(labels, np.int32)))
    return dataset.map(
        lambda path, label: (load(path), label),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
