"""Search speed and accuracy: keras_ssl's exact TensorFlow index vs its faiss backends.

An index of ``--size`` vectors is searched with ``--queries`` queries for the ``--k`` nearest
(cosine). Reported per backend: build seconds, queries per second (median of ``--repeats``
timed passes after one warm-up pass), and ``neighbour recall@k``, the fraction of the exact
top-k that the backend also returns, and label recall@k (with ``--map-at-r`` also mAP@R; the
retrieval metrics of ``keras_ssl.retrieval``).

Data: ``random`` draws unit vectors from a mixture of ``--clusters`` Gaussian clusters in
``--dim`` dimensions (labels = cluster); ``fashion_mnist`` embeds the real Fashion-MNIST train
split (the index, 60,000 images) and test split (queries) with a randomly initialised, seeded
SmallResNet (128-d features), which already groups similar images.

Usage:
    python benchmarks/retrieval.py                                  # 60k x 128-d, 2k queries
    python benchmarks/retrieval.py --data fashion_mnist --queries 10000
    python benchmarks/retrieval.py --size 20000 --dim 64 --backends exact faiss-hnsw
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras_ssl  # noqa: E402, F401  (first: keeps TensorFlow's start-up notices quiet)
from keras_ssl.retrieval import Index, retrieval_metrics  # noqa: E402

BACKENDS = {
    "exact": ("exact", {}),
    "faiss-hnsw": ("faiss", {"kind": "hnsw"}),
    "faiss-ivf": ("faiss", {"kind": "ivf_flat"}),
}


def random_data(size, queries, dim, clusters, seed):
    """Unit vectors around ``clusters`` random centres: (index, labels, queries, labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(count):
        labels = rng.integers(0, clusters, count)
        vectors = centres[labels] + rng.normal(scale=0.8 / np.sqrt(dim), size=(count, dim))
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), labels

    return (*draw(size), *draw(queries))


def fashion_mnist_data(size, queries, seed):
    """Random-init SmallResNet embeddings of Fashion-MNIST train (index) and test (queries)."""
    import keras

    from keras_ssl import backbones, evaluation
    from keras_ssl.datasets import fashion_mnist

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    keras.utils.set_random_seed(seed)
    encoder = backbones.SmallResNet((28, 28, 1))
    start = time.perf_counter()
    train = evaluation.extract_features(encoder, x_train[:size, ..., None], verbose=1)
    test = evaluation.extract_features(encoder, x_test[:queries, ..., None], verbose=1)
    print(f"embedded {len(train) + len(test):,} images in {time.perf_counter() - start:.1f} s")
    return train, np.asarray(y_train[:size]), test, np.asarray(y_test[:queries])


def measure(
    name,
    vectors,
    labels,
    queries,
    query_labels,
    k,
    repeats,
    exact_ids=None,
    map_r=False,
    overrides=None,
):
    """Builds one backend's index and times its search; returns a result row."""
    backend, options = BACKENDS[name]
    options = {**options, **(overrides or {})} if backend == "faiss" else options
    start = time.perf_counter()
    index = Index(backend, **options).build(vectors, labels=labels)
    build_seconds = time.perf_counter() - start
    ids, _ = index.search(queries, k)  # warm-up (and the neighbours compared below)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        index.search(queries, k)
        timings.append(time.perf_counter() - start)
    seconds = statistics.median(timings)
    row = {
        "backend": name,
        "options": index.options,
        "build_s": build_seconds,
        "queries_per_s": len(queries) / seconds,
        "neighbour_recall": 1.0
        if exact_ids is None
        else float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, exact_ids)])),
    }
    metrics = retrieval_metrics(index, queries, query_labels, (k,), (), include_map_at_r=map_r)
    row.update(label_recall=metrics[f"recall@{k}"], map_at_r=metrics.get("map@R", float("nan")))
    return row, ids


def run(args):
    """Runs the benchmark for parsed ``args``; prints and returns the result rows."""
    if args.data == "random":
        data = random_data(args.size, args.queries, args.dim, args.clusters, args.seed)
        what = f"{args.size:,} random unit vectors ({args.dim}-d, {args.clusters} clusters)"
    else:
        data = fashion_mnist_data(args.size, args.queries, args.seed)
        what = f"{len(data[0]):,} Fashion-MNIST train embeddings ({data[0].shape[1]}-d)"
    vectors, labels, queries, query_labels = data
    print(f"index: {what}; {len(queries):,} queries; k={args.k}; cosine")
    names = ["exact"] + [name for name in args.backends if name != "exact"]
    rows, exact_ids = [], None
    for name in names:
        row, ids = measure(
            name,
            vectors,
            labels,
            queries,
            query_labels,
            args.k,
            args.repeats,
            exact_ids,
            args.map_at_r,
            {"ef_search": args.ef_search, "nprobe": args.nprobe},
        )
        exact_ids = ids if name == "exact" else exact_ids
        rows.append(row)
    header = (
        f"{'backend':<12}{'build s':>9}{'queries/s':>12}{'nbr recall@' + str(args.k):>16}"
        f"{'label recall@' + str(args.k):>18}{'mAP@R':>9}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['backend']:<12}{row['build_s']:>9.2f}{row['queries_per_s']:>12,.0f}"
            f"{row['neighbour_recall']:>16.4f}{row['label_recall']:>18.4f}"
            + (f"{row['map_at_r']:>9.4f}" if row["map_at_r"] == row["map_at_r"] else f"{'-':>9}")
        )
    for row in rows[1:]:
        print(f"{row['backend']} options: {row['options']}")
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("random", "fashion_mnist"), default="random")
    parser.add_argument("--size", type=int, default=60_000, help="index vectors")
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--dim", type=int, default=128, help="random data only")
    parser.add_argument("--clusters", type=int, default=100, help="random data only")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ef-search", type=int, default=128, help="faiss HNSW ef_search")
    parser.add_argument("--nprobe", type=int, default=16, help="faiss IVF cells probed")
    parser.add_argument(
        "--map-at-r",
        action="store_true",
        help="also mAP@R (searches every query to the depth of its class size: slow for faiss)",
    )
    parser.add_argument(
        "--backends", nargs="+", choices=sorted(BACKENDS), default=["faiss-hnsw", "faiss-ivf"]
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse_args())
