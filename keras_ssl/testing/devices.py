"""Logical CPU devices and the one MirroredStrategy per process that tests share."""

import tensorflow as tf

_STRATEGY = None


def configure_logical_cpus(count=2):
    """Splits the host CPU into ``count`` logical devices (must run before any TF op).

    Returns:
        True when the devices are configured, False when TensorFlow was already initialised
        with a different layout (then the multi-replica tests cannot run in this process).
    """
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        return len(tf.config.list_logical_devices("CPU")) >= count
    return True


def two_replica_strategy():
    """The process-wide ``MirroredStrategy`` over two logical CPUs.

    TensorFlow cannot run a second ``MirroredStrategy`` in a process after one has trained
    ("Shape mismatch in the collective instance"), so every test shares this one.
    """
    global _STRATEGY
    if _STRATEGY is None:
        devices = tf.config.list_logical_devices("CPU")
        if len(devices) < 2:
            raise ValueError(
                f"Two logical CPU devices are needed for the 2-replica test; found "
                f"{len(devices)}. Fix: call keras_ssl.testing.configure_logical_cpus(2) before "
                "any TensorFlow op runs (tests/conftest.py does this)."
            )
        _STRATEGY = tf.distribute.MirroredStrategy([d.name for d in devices[:2]])
    return _STRATEGY
