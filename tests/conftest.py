"""Test-session setup: two logical CPUs for the 2-replica equivalence tests."""

import importlib.util
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_ssl.testing import configure_logical_cpus  # noqa: E402

configure_logical_cpus(2)


@pytest.fixture
def load_benchmark():
    """Imports a script of ``benchmarks/`` by name (the folder is not a package)."""

    def load(name):
        path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks", f"{name}.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
