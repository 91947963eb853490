"""The method battery as one pytest base class: a method's test file subclasses it once.

::

    class TestBattery(testing.MethodBattery):
        make_model = staticmethod(make_model)   # () -> an uncompiled method
        make_data = staticmethod(make_data)     # (steps=2) -> a dict of NumPy batches
        global_batch = 8
        state_fn = staticmethod(queue_state)    # optional: method state beyond its weights

collects six tests (fit updates, 2 replicas = 1, XLA step, ``.keras`` round trip, export in a
fresh process, ``mixed_bfloat16`` / ``mixed_float16``), each a check of
:mod:`keras_ssl.testing.test_case`. The plain float32 run that five of them compare with
(``make_model()`` fit on ``make_data()``) is trained once per test process and class
(:func:`~keras_ssl.testing.test_case.train_reference`); the checks only read it. A method adds
its own assertions through the hooks :meth:`MethodBattery.check_history` and
:meth:`MethodBattery.check_restored`; where one check needs other settings (a lower learning
rate, a tolerance), the attribute says so and a comment beside it says why.
"""

import pytest

from keras_ssl.testing.test_case import (
    check_export,
    check_fit_updates,
    check_mixed_precision,
    check_replica_equivalence,
    check_save_load,
    check_xla_step,
    train_reference,
)

_REFERENCES = {}  # battery class -> its Reference run, trained once per test process


class MethodBattery:
    """Base class of a method's battery (pytest collects the subclasses named ``Test*``).

    Attributes:
        make_model: ``() -> SSLMethod`` (uncompiled). Function attributes are wrapped in
            ``staticmethod`` (``make_model = staticmethod(make_model)``).
        make_data: ``(steps=2) -> dict`` of NumPy batches (``{"views": ...}`` or
            ``{"images": ...}``) holding ``steps * global_batch`` examples.
        global_batch: the global batch size (divisible by 2 replicas).
        state_fn: ``(model) -> dict`` of arrays compared across replicas and a round trip
            (queues, centres, teacher weights), or ``None``.
        optimizer: optimizer config of every check (``None``: SGD 0.05, momentum 0.9).
        replica_optimizer: optimizer of the replica check alone (``None``: ``optimizer``).
        replica_tolerance: ``{"atol": .., "rtol": ..}`` of the replica check.
        xla_tolerance: ``{"atol": .., "rtol": ..}`` of the XLA check.
        mixed_precision_tolerance: ``{"atol": .., "rtol": ..}`` of the mixed-precision check.
        save_load_model: factory for the round trip alone (``None``: ``make_model``), e.g. one
            whose state was adapted to data first.
        replica_model: factory for the replica check alone (``None``: ``make_model``), e.g. one
            without a step that depends on the device layout (MoCo's shuffle-BN).
        mixed_precision_model: factory for the mixed-precision check alone (``None``:
            ``make_model``), e.g. one whose activations bfloat16 can resolve.
    """

    make_model = None
    make_data = None
    global_batch = 8
    state_fn = None
    optimizer = None
    replica_optimizer = None
    replica_tolerance = {}
    xla_tolerance = {}
    mixed_precision_tolerance = {}
    save_load_model = None
    replica_model = None
    mixed_precision_model = None

    def check_history(self, history):
        """Hook: extra assertions on the ``fit`` history of :meth:`test_fit_updates_weights`."""

    def check_restored(self, restored):
        """Hook: extra assertions on the model restored by :meth:`test_keras_round_trip`."""

    def reference(self):
        """The class's plain run: ``make_model()`` with ``optimizer`` fit on ``make_data()``."""
        key = type(self)
        if key not in _REFERENCES:
            _REFERENCES[key] = train_reference(
                self.make_model, self.make_data(), self.global_batch, self.optimizer
            )
        return _REFERENCES[key]

    def test_fit_updates_weights(self):
        history = check_fit_updates(
            self.make_model,
            self.make_data(),
            self.global_batch,
            optimizer=self.optimizer,
            reference=self.reference(),
        )
        self.check_history(history)

    def test_two_replicas_equal_one(self):
        own_run = self.replica_model is None and self.replica_optimizer in (None, self.optimizer)
        check_replica_equivalence(
            self.replica_model or self.make_model,
            self.make_data(),
            self.global_batch,
            state_fn=self.state_fn,
            optimizer=self.replica_optimizer or self.optimizer,
            reference=self.reference() if own_run else None,
            **self.replica_tolerance,
        )

    def test_xla_step_matches_plain_step(self):
        check_xla_step(
            self.make_model,
            self.make_data(),
            self.global_batch,
            optimizer=self.optimizer,
            reference=self.reference(),
            **self.xla_tolerance,
        )

    def test_keras_round_trip(self, tmp_path):
        restored = check_save_load(
            self.save_load_model or self.make_model,
            self.make_data(),
            self.global_batch,
            tmp_path,
            state_fn=self.state_fn,
            optimizer=self.optimizer,
        )
        self.check_restored(restored)

    def test_export_serves_in_a_fresh_process(self, tmp_path):
        check_export(
            self.make_model,
            self.make_data(),
            self.global_batch,
            tmp_path,
            reference=self.reference(),
        )

    # mixed_float16 (GPU loss scaling, shared by every method through Keras'
    # LossScaleOptimizer) runs with -m slow; bfloat16, the TPU policy, in the default run.
    @pytest.mark.parametrize(
        "policy", ["mixed_bfloat16", pytest.param("mixed_float16", marks=pytest.mark.slow)]
    )
    def test_mixed_precision_step_is_close_to_float32(self, policy):
        check_mixed_precision(
            self.mixed_precision_model or self.make_model,
            self.make_data(),
            self.global_batch,
            policy,
            optimizer=self.optimizer,
            reference=None if self.mixed_precision_model else self.reference(),
            **self.mixed_precision_tolerance,
        )


class PretextBattery(MethodBattery):
    """:class:`MethodBattery` for a ``PretextClassificationMethod`` (rotation, jigsaw, relative
    patch) trained with an online probe: ``fit`` logs the pretext accuracy, in ``[0, 1]``,
    beside the loss and the probe's terms."""

    def check_history(self, history):
        assert set(history) == {"loss", "pretext_accuracy", "probe_loss", "probe_accuracy"}
        assert all(0 <= v <= 1 for v in history["pretext_accuracy"])
