"""Test helpers that every keras_ssl test uses (see DESIGN.md, "Tests")."""

from keras_ssl.testing.battery import MethodBattery, PretextBattery
from keras_ssl.testing.configs import load_config, shrink_config
from keras_ssl.testing.devices import configure_logical_cpus, two_replica_strategy
from keras_ssl.testing.test_case import (
    check_export,
    check_fit_updates,
    check_mixed_precision,
    check_replica_equivalence,
    check_save_load,
    check_xla_step,
    make_dataset,
    run_loss_test,
    train_reference,
)

__all__ = [
    "MethodBattery",
    "PretextBattery",
    "check_export",
    "check_fit_updates",
    "check_mixed_precision",
    "check_replica_equivalence",
    "check_save_load",
    "check_xla_step",
    "configure_logical_cpus",
    "load_config",
    "make_dataset",
    "run_loss_test",
    "shrink_config",
    "train_reference",
    "two_replica_strategy",
]
