"""``keras-ssl search``: nearest neighbours of query images among a run's probe training split.

    keras-ssl search --workdir runs/simclr --query my_images/ [--top_k=10]
                     [--index=PATH] [--index_backend=exact|faiss]

The query images (a folder of PNG/JPEG files, one image file, or a ``.npy`` array) are embedded
with the run's exported encoder (``DIR/encoder``, exported first if missing) and searched in an
index of the probe training split's embeddings. The index is loaded from ``--index`` (default
``DIR/index``) when it was built from the same encoder and split; otherwise it is built and saved
there. Outputs: ``DIR/search/neighbours.json`` and ``DIR/search/neighbours.png``.
"""

import json
import os
import pathlib
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_ssl.datasets import fashion_mnist
from keras_ssl.datasets import folder as folder_lib
from keras_ssl.retrieval.index import INDEX_FILE, Index
from keras_ssl.retrieval.plots import plot_neighbours
from keras_ssl.validation import check_int

SEARCH_FOLDER = "search"
INDEX_SPLIT = "probe_train"


def search_workdir(
    workdir, query, k=10, index_path=None, backend="exact", batch_size=256, verbose=True
):
    """Finds the ``k`` nearest probe-training images of each query image of a trained run.

    Args:
        workdir: a ``keras-ssl train`` work folder (``config.json`` and ``model.keras``).
        query: a folder of PNG/JPEG images (flat, or one subfolder per class: the subfolder is
            reported as each query's ``folder_class``), one image file, or a ``.npy`` array of
            ``uint8`` images ``[N, H, W, C]`` / ``[N, H, W]`` (floats in ``[0, 1]`` accepted).
            Image files are resized to the encoder's input size and converted to its channels.
        k: neighbours per query.
        index_path: where the index is loaded from, or built and saved to (default
            ``DIR/index``). A saved index of another encoder or split is rebuilt at the default
            path and refused at an explicit one.
        backend: ``"exact"`` or ``"faiss"``, for an index that is built; a loaded index keeps
            the backend it was saved with.
        batch_size: images per encoder call.
        verbose: print the data source, progress bars and the neighbours.

    Returns:
        The content written to ``DIR/search/neighbours.json``: ``queries`` (each with its
        ``neighbours``: rank, id, label, class, score; id -1, label -1, class and score None
        where an approximate index found fewer than ``k``), ``index``, ``backend``, ``k``,
        ``plot``.

    Raises:
        ValueError: for a folder that is not a finished run, unreadable or mismatched query
            images, a bad ``k`` or backend, a stale explicit index, or faiss not installed
            (the message names ``pip install keras-ssl[retrieval]``).
    """
    from keras_ssl import experiment, export
    from keras_ssl.datasets.splits import load_splits, probe_splits

    workdir = os.path.abspath(os.fspath(workdir))
    k = check_int(k, "k", fix="pass e.g. --top_k=10.")
    check_int(batch_size, "batch_size")
    config = experiment.load_config(workdir)
    encoder_dir = os.path.join(workdir, "encoder")
    if not os.path.exists(os.path.join(encoder_dir, export.METADATA_FILE)):
        logging.info("No export in %s: exporting the trained encoder first.", encoder_dir)
        experiment.export_run(workdir)
    with open(os.path.join(encoder_dir, export.METADATA_FILE)) as file:
        export_info = json.load(file)
    encoder = tf.saved_model.load(encoder_dir)
    input_shape = tuple(export_info["input_shape"])
    queries, names, folder_classes = load_query_images(query, input_shape)

    probe_train = probe_splits(config, load_splits(config.data, announce=verbose))[0]
    images, labels = probe_train
    class_names = _class_names(config)
    info = {
        "encoder_fingerprint": export_info["fingerprint"],
        "split": INDEX_SPLIT,
        "examples": len(images),
        "data": json.loads(config.data.to_json_best_effort()),
        "seed": int(config.seed),
    }
    default_path = os.path.join(workdir, "index")
    index_path = os.path.abspath(os.fspath(index_path)) if index_path else default_path
    try:
        index = _load_or_build(
            index_path,
            index_path == default_path,
            info,
            backend,
            encoder,
            probe_train,
            batch_size,
            verbose,
        )
    except ImportError as error:  # faiss missing: a one-line CLI error naming the fix
        raise ValueError(str(error)) from error
    if k > len(index):
        raise ValueError(
            f"`k` must be at most the {len(index)} images of the index; received k={k}. Fix: "
            f"pass --top_k <= {len(index)}."
        )
    query_embeddings = embed_images(encoder, queries, batch_size)
    ids, scores = index.search(query_embeddings, k)
    neighbour_labels = index.labels_for(ids)
    result = {
        "workdir": workdir,
        "encoder": encoder_dir,
        "index": index_path,
        "backend": index.backend,
        "index_split": INDEX_SPLIT,
        "index_size": len(index),
        "k": k,
        "metric": "cosine",
        "queries": [],
    }
    for row, name in enumerate(names):
        entry = {"query": name}
        if folder_classes is not None:
            entry["folder_class"] = folder_classes[row]
        entry["neighbours"] = [
            {
                "rank": rank + 1,
                "id": int(ids[row, rank]),
                "label": int(neighbour_labels[row, rank]),
                "class": class_names(int(neighbour_labels[row, rank])),  # None: not found
                "score": float(scores[row, rank]) if ids[row, rank] >= 0 else None,
            }
            for rank in range(k)
        ]
        result["queries"].append(entry)

    out_dir = os.path.join(workdir, SEARCH_FOLDER)
    plot_path = os.path.join(out_dir, "neighbours.png")
    found = (ids >= 0)[..., None, None, None]  # an approximate index may find fewer than k
    plot_neighbours(
        queries,
        np.where(found, images[np.maximum(ids, 0)], 0).astype(np.uint8),
        plot_path,
        query_titles=[_short(os.path.basename(name)) for name in names],
        neighbour_titles=[
            [f"{(class_names(int(lab)) or 'none')[:11]} {s:.3f}" for lab, s in zip(lab_row, s_row)]
            for lab_row, s_row in zip(neighbour_labels, scores)
        ],
        title=f"Nearest {k} of {len(index):,} {INDEX_SPLIT} images (cosine)",
    )
    result["plot"] = os.path.relpath(plot_path, workdir)
    _write_json(os.path.join(out_dir, "neighbours.json"), result)
    if verbose:
        print(format_neighbours(result), file=sys.stdout, flush=True)
    return result


def load_query_images(query, input_shape):
    """Reads query images for an encoder taking ``uint8`` images of ``input_shape`` ``(H, W, C)``.

    Args:
        query: a folder of images (see :func:`keras_ssl.datasets.load_image_folder`), one
            PNG/JPEG file, or a ``.npy`` file of images ``[N, H, W, C]``, ``[N, H, W]`` or one
            image ``[H, W]`` (``uint8``, or floats in ``[0, 1]``).
        input_shape: the encoder's ``(height, width, channels)``.

    Returns:
        ``(images uint8 [N, H, W, C], names, folder_classes)``: ``names`` are file paths relative
        to the folder (or ``"<file>.npy[i]"``); ``folder_classes`` the class subfolder of each
        image, or ``None``.

    Raises:
        ValueError: for a missing path, unreadable files, or a ``.npy`` array of another size,
            channel count, rank or dtype.
    """
    path = pathlib.Path(os.fspath(query))
    height, width, channels = (int(d) for d in input_shape)
    if path.suffix.lower() == ".npy" and path.is_file():
        images = _npy_images(path, (height, width, channels))
        return images, [f"{path.name}[{i}]" for i in range(len(images))], None
    if path.is_file() and path.suffix.lower() in folder_lib.IMAGE_EXTENSIONS:
        dataset = folder_lib.image_files_dataset([path], None, (height, width), channels)
        return np.stack(list(dataset.as_numpy_iterator())), [path.name], None
    if not path.is_dir():
        raise ValueError(
            f"--query must be a folder of images, an image file or a .npy array; received "
            f"{str(query)!r}, which {'is not one of those' if path.exists() else 'does not exist'}"
            ". Fix: check the path."
        )
    paths, _, class_names = folder_lib.list_images(path)
    (images, labels), _ = folder_lib.load_image_folder(
        path, image_size=(height, width), channels=channels, as_numpy=True
    )
    names = [str(p.relative_to(path)) for p in paths]
    classes = None if labels is None else [class_names[int(label)] for label in labels]
    return images, names, classes


def _npy_images(path, shape):
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(
            f"Cannot read {path} as a NumPy image array ({error}). Fix: save the images with "
            "np.save(path, images) as a plain numeric array."
        ) from error
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or tuple(array.shape[1:]) != shape:
        raise ValueError(
            f"{path} must hold images [N, {shape[0]}, {shape[1]}, {shape[2]}] for this "
            f"encoder; received shape {array.shape}. Fix: resize the images to "
            f"{shape[0]}x{shape[1]} with {shape[2]} channel(s), or pass a folder of image files "
            "(resized automatically)."
        )
    if array.dtype == np.uint8:
        return array
    if (
        np.issubdtype(array.dtype, np.floating)
        and array.size
        and 0 <= array.min() <= array.max() <= 1
    ):
        return np.round(array * 255.0).astype(np.uint8)
    raise ValueError(
        f"{path} must hold uint8 images in [0, 255] or floats in [0, 1]; received dtype "
        f"{array.dtype}"
        + (f" with values in [{array.min()}, {array.max()}]" if array.size else "")
        + ". Fix: convert with images.astype('uint8') (values 0-255)."
    )


def embed_images(encoder, images, batch_size=256, verbose=0):
    """Embeddings of ``uint8`` images from an exported encoder's ``serve`` signature.

    Args:
        encoder: a loaded export (``tf.saved_model.load(DIR/encoder)``).
        images: ``uint8 [N, H, W, C]``.
        batch_size: images per call.
        verbose: 1 shows a progress bar.

    Returns:
        ``float32 [N, D]`` L2-normalised embeddings.
    """
    progbar = keras.utils.Progbar(len(images), unit_name="image") if verbose else None
    parts = []
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start : start + batch_size], dtype=tf.uint8)
        parts.append(encoder.serve(batch)["embeddings"].numpy())
        if progbar is not None:
            progbar.update(min(start + batch_size, len(images)))
    return np.concatenate(parts).astype(np.float32)


def _load_or_build(path, is_default, info, backend, encoder, probe_train, batch_size, verbose):
    if os.path.exists(os.path.join(path, INDEX_FILE)):
        index = Index.load(path)
        stale = {key: value for key, value in info.items() if index.info.get(key) != value}
        if not stale and (not is_default or index.backend == backend):
            if index.backend != backend:
                logging.info("Using the saved %s index at %s.", index.backend, path)
            return index
        if not is_default:
            raise ValueError(
                f"The index at {path} was built from another encoder or split (differs in "
                f"{sorted(stale)}); expected one built from this run's export and probe "
                "training split. Fix: delete that folder, or pass another --index path to "
                "build one there."
            )
    images, labels = probe_train
    if verbose:
        print(f"Embedding {len(images):,} {INDEX_SPLIT} images for the index ...", flush=True)
    embeddings = embed_images(encoder, images, batch_size, verbose=int(verbose))
    index = Index(backend)
    index.build(embeddings, labels=labels)
    index.info = info
    index.save(path, overwrite=True)
    return index


def _class_names(config):
    """label -> class name (``None`` for label -1, a neighbour that was not found)."""
    if config.data.dataset == "fashion_mnist":
        return lambda label: fashion_mnist.CLASS_NAMES[label] if label >= 0 else None
    return lambda label: str(label) if label >= 0 else None


def _short(name, limit=14):
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def format_neighbours(result, shown=5):
    """One line per query: its name, then its first ``shown`` neighbours (class, score, id)."""
    lines = [
        f"{len(result['queries'])} queries, {result['k']} nearest of {result['index_size']:,} "
        f"{result['index_split']} images ({result['backend']} index, cosine):"
    ]
    for entry in result["queries"]:
        items = ", ".join(
            f"{n['class']} {n['score']:.3f} (#{n['id']})"
            for n in entry["neighbours"][:shown]
            if n["id"] >= 0
        )
        more = " ..." if len(entry["neighbours"]) > shown else ""
        lines.append(f"  {entry['query']}: {items}{more}")
    lines.append(
        f"wrote {os.path.join(result['workdir'], SEARCH_FOLDER, 'neighbours.json')} and "
        f"{os.path.join(result['workdir'], result['plot'])}"
    )
    return "\n".join(lines)


def _write_json(path, payload):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "w") as file:
        json.dump(payload, file, indent=2)
    os.replace(partial, path)
