"""Test helpers that every keras_ssl test uses (see DESIGN.md, "Tests")."""

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
    run_method_test,
)

__all__ = [
    "check_export",
    "check_fit_updates",
    "check_mixed_precision",
    "check_replica_equivalence",
    "check_save_load",
    "check_xla_step",
    "configure_logical_cpus",
    "make_dataset",
    "run_loss_test",
    "run_method_test",
    "two_replica_strategy",
]
