"""Test-session setup: two logical CPUs for the 2-replica equivalence tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_ssl.testing import configure_logical_cpus  # noqa: E402

configure_logical_cpus(2)
