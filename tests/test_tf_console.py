"""TensorFlow's start-up notices stay off the console; real messages and the opt-in do not."""

import logging
import os
import re
import subprocess
import sys

from keras_ssl import _tf_console

NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796608388.442218   16940 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1796608388.442505   16940 cudart_stub.cc:31] Could not find cuda drivers\n",
    "E0000 00:00:1796608391.114111   16940 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
]
KEPT = [
    "E0000 00:00:1796608391.114111   16940 some_op.cc:52] Out of memory\n",
    "F0000 00:00:1796608391.114111   16940 check.cc:1] Check failed\n",
    "UserWarning: something the user must see\n",
    "Traceback (most recent call last):\n",
]


def test_only_the_start_up_notices_are_dropped():
    assert all(_tf_console.unwanted(line) for line in NOTICES)
    assert not any(_tf_console.unwanted(line) for line in KEPT)


def test_lines_that_are_not_notices_come_back_to_stderr(monkeypatch, capfd):
    monkeypatch.delitem(sys.modules, "tensorflow")  # as before TensorFlow's first import
    monkeypatch.delenv(_tf_console.OPT_IN_VARIABLE, raising=False)
    with _tf_console.quiet_import():
        os.write(2, "".join(NOTICES[:2] + KEPT[:1] + NOTICES[2:] + KEPT[1:]).encode())
    assert capfd.readouterr().err == "".join(KEPT)


def test_stderr_is_restored_when_the_block_raises(monkeypatch, capfd):
    monkeypatch.delitem(sys.modules, "tensorflow")
    monkeypatch.delenv(_tf_console.OPT_IN_VARIABLE, raising=False)
    try:
        with _tf_console.quiet_import():
            os.write(2, (NOTICES[1] + KEPT[0]).encode())
            raise ImportError("broken install")
    except ImportError:
        pass
    os.write(2, b"after\n")
    assert capfd.readouterr().err == KEPT[0] + "after\n"


def _stderr_of(code, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    environment.pop(_tf_console.OPT_IN_VARIABLE, None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**environment, **env}
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def _shape(stderr):
    """The lines without their timestamps and thread ids."""
    return [re.sub(r"[\d.]+", "#", line) for line in stderr.splitlines()]


def test_importing_keras_ssl_is_silent_and_the_variable_opts_back_in():
    assert _stderr_of("import keras_ssl") == ""
    plain = _stderr_of("import tensorflow as tf; tf.config.list_physical_devices()")
    opted_in = _stderr_of("import keras_ssl", **{_tf_console.OPT_IN_VARIABLE: "1"})
    assert _shape(opted_in) == _shape(plain)  # exactly TensorFlow's own output


def _record(pathname, level):
    return logging.LogRecord("absl", level, pathname, 1, "message", None, None)


def test_the_cli_handler_keeps_own_info_lines_and_all_warnings(monkeypatch):
    monkeypatch.delenv(_tf_console.OPT_IN_VARIABLE, raising=False)
    handler = logging.StreamHandler()
    _tf_console.only_own_info_lines(handler)
    _tf_console.only_own_info_lines(handler)  # idempotent
    assert len(handler.filters) == 1
    own = os.path.join(os.path.dirname(_tf_console.__file__), "experiment.py")
    tensorflow = "/venv/site-packages/tensorflow/python/saved_model/fingerprinting_utils.py"
    assert handler.filter(_record(own, logging.INFO))
    assert not handler.filter(_record(tensorflow, logging.INFO))
    assert handler.filter(_record(tensorflow, logging.WARNING))
    monkeypatch.setenv(_tf_console.OPT_IN_VARIABLE, "1")
    opted_in = logging.StreamHandler()
    _tf_console.only_own_info_lines(opted_in)
    assert opted_in.filters == []
