"""Weights registered by URL: downloaded from a server on loopback, cached, verified."""

import functools
import hashlib
import http.server
import threading

import keras
import numpy as np
import pytest

from keras_ssl import pretrained

SHIPPED = "simclr_fashion_mnist"


@pytest.fixture
def server(tmp_path):
    """Serves ``tmp_path/served`` on 127.0.0.1; yields (folder, base URL, request paths)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def url_entry(url, sha256, name="served_simclr"):
    shipped = pretrained.get_entry(SHIPPED)
    return pretrained.WeightsEntry(
        name=name,
        method=shipped.method,
        architecture=shipped.architecture,
        architecture_kwargs=shipped.architecture_kwargs,
        input_shape=shipped.input_shape,
        sha256=sha256,
        url=url,
    )


def shipped_bytes():
    return (pretrained.WEIGHTS_DIR / pretrained.get_entry(SHIPPED).file).read_bytes()


def weights_of(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def test_url_weights_are_downloaded_once_then_read_from_the_cache(server, tmp_path, monkeypatch):
    folder, base, requests = server
    data = shipped_bytes()
    (folder / "big.weights.h5").write_bytes(data)
    entry = url_entry(f"{base}/big.weights.h5", hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(pretrained.REGISTRY, entry.name, entry)
    cache = tmp_path / "cache"

    first = pretrained.load(entry.name, cache_dir=cache)
    expected = weights_of(pretrained.load(SHIPPED))
    for received, want in zip(weights_of(first), expected, strict=True):
        np.testing.assert_array_equal(received, want)
    assert requests == ["/big.weights.h5"]
    cached = cache / pretrained.CACHE_SUBDIR / f"{entry.name}-{entry.sha256[:12]}.weights.h5"
    assert cached.read_bytes() == data

    pretrained.load(entry.name, cache_dir=cache)
    assert requests == ["/big.weights.h5"]  # the cache answered

    cached.write_bytes(b"truncated")  # a damaged cache is fetched anew
    assert pretrained.weights_path(entry.name, cache_dir=cache) == str(cached)
    assert requests == ["/big.weights.h5"] * 2 and cached.read_bytes() == data


def test_a_download_with_the_wrong_hash_is_refused_and_removed(server, tmp_path, monkeypatch):
    folder, base, requests = server
    data = shipped_bytes()
    other = data[:-1] + bytes([data[-1] ^ 0xFF])  # the last byte differs
    (folder / "other.weights.h5").write_bytes(other)
    expected = hashlib.sha256(data).hexdigest()
    received = hashlib.sha256(other).hexdigest()
    entry = url_entry(f"{base}/other.weights.h5", expected)
    monkeypatch.setitem(pretrained.REGISTRY, entry.name, entry)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=f"has SHA-256 {received}; expected {expected}"):
        pretrained.load(entry.name, cache_dir=cache)
    assert list((cache / pretrained.CACHE_SUBDIR).iterdir()) == []
    assert len(requests) == 2  # fetched, then fetched once more before giving up


def test_a_missing_url_is_a_clear_error(server, tmp_path, monkeypatch):
    _, base, requests = server
    entry = url_entry(f"{base}/missing.weights.h5", "0" * 64)
    monkeypatch.setitem(pretrained.REGISTRY, entry.name, entry)
    with pytest.raises(ValueError, match="downloading .*missing.weights.h5.* failed.*404"):
        pretrained.load(entry.name, cache_dir=tmp_path / "cache")
    assert requests == ["/missing.weights.h5"]
    assert list((tmp_path / "cache" / pretrained.CACHE_SUBDIR).iterdir()) == []
