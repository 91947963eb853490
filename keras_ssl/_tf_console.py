"""Keeps TensorFlow's start-up noise off the console while keras_ssl imports it.

Importing TensorFlow 2.21 on a machine without a GPU writes C++ log lines to stderr before
TensorFlow's logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them: oneDNN and
CUDA-stub notices (``I...``), absl's "All log messages before absl::InitializeLog()" banner and
the ``failed call to cuInit`` error of a machine that has no NVIDIA driver. :func:`quiet_import`
sends the process's stderr (file descriptor 2) to a temporary file while TensorFlow is imported
and its devices are listed, then writes back every line that is not one of those notices: real
warnings and errors still reach the console. ``TF_CPP_MIN_LOG_LEVEL`` defaults to 1 (no C++ INFO
lines later, e.g. XLA's "Compiled cluster" notice) unless it is set.

The CLI also drops the INFO lines that TensorFlow's Python code logs through absl (SavedModel
export notices such as "Writing fingerprint"), keeping keras_ssl's own INFO lines and every
warning (:func:`only_own_info_lines`).

``KERAS_SSL_TF_LOGS=1`` turns all of this off. This module imports nothing heavy: it runs
before TensorFlow is imported.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile

OPT_IN_VARIABLE = "KERAS_SSL_TF_LOGS"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

_NOISE = re.compile(
    r"^(?:"
    r"[IW]\d{4} .*"  # absl C++ INFO / WARNING lines: I0000 00:00:... port.cc:153] oneDNN ...
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|E\d{4} .*failed call to cuInit.*"  # the CPU-only machine's missing driver
    r")$"
)


def wants_tf_logs():
    """True when the user asked for TensorFlow's own console output (``KERAS_SSL_TF_LOGS=1``)."""
    return os.environ.get(OPT_IN_VARIABLE, "").strip().lower() in ("1", "true", "yes")


class _OwnInfoLines(logging.Filter):
    """Passes warnings and above, and INFO records logged from inside the keras_ssl package."""

    def filter(self, record):
        return record.levelno >= logging.WARNING or record.pathname.startswith(_PACKAGE_DIR)


def only_own_info_lines(handler):
    """Makes ``handler`` (the absl handler) drop other packages' INFO records (no-op on opt-in)."""
    if not wants_tf_logs() and not any(isinstance(f, _OwnInfoLines) for f in handler.filters):
        handler.addFilter(_OwnInfoLines())


def unwanted(line):
    """True for a start-up notice :func:`quiet_import` drops (see the module docs)."""
    return bool(_NOISE.match(line.rstrip("\r\n")))


@contextlib.contextmanager
def quiet_import():
    """Hides TensorFlow's start-up notices written to stderr inside the block.

    A no-op when TensorFlow is already imported (its notices are out) or when the user opted
    in to them. Lines that are not notices are written back to stderr when the block ends,
    also when it raises.
    """
    if "tensorflow" in sys.modules or wants_tf_logs():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr descriptor (some embedded interpreters)
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not unwanted(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
