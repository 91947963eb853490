"""Fashion-MNIST from TensorFlow Datasets, probed before TFDS tries to download it.

Offline, TFDS retries every download for minutes before failing, so the hosts of the builder's
files are first probed with a TCP connection (``PROBE_TIMEOUT_S`` each).
"""

import socket
import urllib.parse

import numpy as np

PROBE_TIMEOUT_S = 5.0


def prepared_builder(download):
    """``(builder, None)`` with the TFDS ``fashion_mnist`` builder prepared, or ``(None, why)``."""
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder("fashion_mnist")
        if not builder.is_prepared():
            if not download:
                return None, "not prepared and download=False"
            # Offline, TFDS retries each download for minutes before failing: probe first.
            unreachable = unreachable_hosts(builder)
            if unreachable:
                return None, f"cannot be downloaded: {unreachable}"
            builder.download_and_prepare()
    except Exception as error:  # offline, missing dependency, ...: every failure is reported
        return None, f"{type(error).__name__}: {error}"
    return builder, None


def unreachable_hosts(builder):
    """Describes the download hosts of ``builder`` that refuse a TCP connection; "" if none."""
    problems = []
    for host, port in sorted({host_and_port(url) for url in builder.url_infos or {}}):
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
        except OSError as error:
            problems.append(f"{host}:{port} unreachable: {error}")
    return "; ".join(problems)


def host_and_port(url):
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def load_arrays(builder):
    """``((x_train, y_train), (x_test, y_test))`` of a prepared builder, as uint8 arrays."""
    import tensorflow_datasets as tfds

    def split_arrays(split):
        dataset = builder.as_dataset(split=split, shuffle_files=False).batch(10_000)
        batches = list(tfds.as_numpy(dataset))
        images = np.concatenate([batch["image"] for batch in batches]).astype(np.uint8)
        labels = np.concatenate([batch["label"] for batch in batches]).astype(np.uint8)
        return images.reshape(-1, 28, 28), labels

    return split_arrays("train"), split_arrays("test")
