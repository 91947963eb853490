"""The shared test battery: every loss and every method gets the same checks.

``run_loss_test`` checks a loss function; :class:`keras_ssl.testing.MethodBattery` runs all
method checks as the tests of one class, and each check is also callable on its own:

- :func:`check_fit_updates`: two ``fit`` steps, finite losses, every trainable weight moves.
- :func:`check_replica_equivalence`: a 2-replica ``MirroredStrategy`` (two logical CPUs) gives
  the losses, weights and state of one replica on the same global batch.
- :func:`check_xla_step`: the step compiles with XLA and matches the uncompiled step.
- :func:`check_save_load`: a ``.keras`` round trip restores config, embeddings, optimizer and
  method state (one more step on both gives the same weights).
- :func:`check_export`: the exported SavedModel serves the same embeddings in a fresh process
  that cannot import keras_ssl.
- :func:`check_mixed_precision`: a ``mixed_bfloat16`` or ``mixed_float16`` step (with loss
  scaling) is finite, logs float32 losses and stays close to the float32 step.

Batches are dicts of NumPy arrays (``{"views": (v1, v2), "labels": y}`` or ``{"images": x}``)
holding ``steps * global_batch`` examples; views made outside the step keep replicas
comparable (random ops inside a replica step draw differently per replica).
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf

from keras_ssl import export
from keras_ssl.testing.devices import two_replica_strategy

_DEFAULT_OPTIMIZER = {"class_name": "SGD", "config": {"learning_rate": 0.05, "momentum": 0.9}}


# ---------------------------------------------------------------------------- losses
def run_loss_test(
    loss_fn,
    inputs,
    expected=None,
    reference_fn=None,
    swap=None,
    loss_object=None,
    atol=1e-5,
):
    """Checks a loss function.

    Args:
        loss_fn: the pure loss function; called as ``loss_fn(**inputs)``.
        inputs: dict of NumPy arrays / scalars.
        expected: hand-computed (or closed-form) value of ``mean(loss_fn(**inputs))``.
        reference_fn: NumPy implementation written from the paper's formula, called with the
            same inputs; must agree element-wise.
        swap: pair of argument names whose exchange must leave the mean loss unchanged.
        loss_object: a ``keras.losses.Loss`` wrapping the function; its config must round trip
            and a rebuilt copy must give the same value on ``(inputs[a], inputs[b])`` where
            ``(a, b)`` are the first two inputs.
        atol: absolute tolerance.
    """
    values = np.asarray(loss_fn(**inputs))
    assert np.all(np.isfinite(values)), f"non-finite loss values: {values}"
    if expected is not None:
        np.testing.assert_allclose(values.mean(), expected, atol=atol, rtol=1e-5)
    if reference_fn is not None:
        np.testing.assert_allclose(values, reference_fn(**inputs), atol=atol, rtol=1e-5)
    if swap is not None:
        first, second = swap
        swapped = dict(inputs, **{first: inputs[second], second: inputs[first]})
        np.testing.assert_allclose(np.mean(loss_fn(**swapped)), values.mean(), atol=atol)
    if loss_object is not None:
        config = loss_object.get_config()
        rebuilt = type(loss_object).from_config(config)
        assert rebuilt.get_config() == config
        args = list(inputs.values())[:2]
        np.testing.assert_allclose(
            float(rebuilt(*args)), float(loss_object(*args)), atol=atol, rtol=1e-6
        )
        np.testing.assert_allclose(float(loss_object(*args)), values.mean(), atol=atol, rtol=1e-5)


# ---------------------------------------------------------------------------- methods
def make_dataset(data, global_batch):
    """A ``tf.data.Dataset`` of ``global_batch``-sized batches of ``data`` (in order)."""
    return tf.data.Dataset.from_tensor_slices(data).batch(global_batch, drop_remainder=True)


def _compile(model, optimizer=None, **kwargs):
    model.compile(optimizer=keras.optimizers.deserialize(optimizer or _DEFAULT_OPTIMIZER), **kwargs)
    return model


def _steps(data, global_batch):
    first = data["views"][0] if "views" in data else data["images"]
    steps = len(first) // global_batch
    assert steps >= 1, f"need at least one global batch of {global_batch}, have {len(first)}"
    return steps


def _fit(model, data, global_batch):
    steps = _steps(data, global_batch)
    history = model.fit(
        make_dataset(data, global_batch), epochs=steps, steps_per_epoch=1, shuffle=False, verbose=0
    )
    return history.history


def _weights(model):
    """``(path, value)`` of every weight, in the model's (deterministic) order.

    Two instances of a model differ in layer-name suffixes, so weights pair up by position.
    """
    return [(w.path, keras.ops.convert_to_numpy(w)) for w in model.weights]


def _assert_same_weights(actual, expected, what, atol, rtol):
    assert len(actual) == len(expected), f"{what}: {len(actual)} weights vs {len(expected)}"
    for (_, value), (path, reference) in zip(actual, expected):
        np.testing.assert_allclose(
            value, reference, atol=atol, rtol=rtol, err_msg=f"weight {path!r} differs: {what}"
        )


def _images_of(data):
    return data["views"][0] if "views" in data else data["images"]


class Reference:
    """One plain float32 run that several checks compare against: ``make_model()`` built after
    ``keras.utils.set_random_seed(0)``, compiled with ``optimizer`` (``jit_compile=False``)
    and fit on ``data``, one global batch per epoch (:func:`train_reference`).

    Attributes:
        model: the trained model (read only: checks compare with it and export it).
        initial_weights: its weights before ``fit`` (NumPy, in ``model.weights`` order).
        initial_trainable: ``{path: value}`` of its trainable weights before ``fit``.
        history: the ``fit`` history, one value per step.
        data, global_batch: what it was trained on.
    """

    def __init__(self, model, initial_weights, initial_trainable, history, data, global_batch):
        self.model = model
        self.initial_weights = initial_weights
        self.initial_trainable = initial_trainable
        self.history = history
        self.data = data
        self.global_batch = global_batch


def train_reference(make_model, data, global_batch, optimizer=None):
    """Trains the :class:`Reference` run: what :func:`check_fit_updates`,
    :func:`check_replica_equivalence`, :func:`check_xla_step`, :func:`check_mixed_precision` and
    :func:`check_export` would each train first. Pass it as their ``reference`` to train it once
    (:class:`~keras_ssl.testing.MethodBattery` does)."""
    keras.utils.set_random_seed(0)
    model = _compile(make_model(), optimizer, jit_compile=False)
    initial = [keras.ops.convert_to_numpy(w) for w in model.weights]
    trainable = {w.path: keras.ops.convert_to_numpy(w) for w in model.trainable_weights}
    history = _fit(model, data, global_batch)
    return Reference(model, initial, trainable, history, data, global_batch)


def _reference(reference, make_model, data, global_batch, optimizer):
    if reference is None:
        return train_reference(make_model, data, global_batch, optimizer)
    if reference.global_batch != global_batch or _steps(reference.data, global_batch) != _steps(
        data, global_batch
    ):
        raise ValueError(
            f"The reference was trained on {_steps(reference.data, reference.global_batch)} "
            f"batches of {reference.global_batch}; this check needs "
            f"{_steps(data, global_batch)} of {global_batch}. Fix: pass reference=None or a "
            "reference from train_reference() on the same data."
        )
    return reference


def check_fit_updates(make_model, data, global_batch, optimizer=None, reference=None):
    """``fit`` runs, every loss term is finite and every trainable weight changes.

    ``reference``: a :func:`train_reference` run on ``data`` to check instead of a new one.
    """
    reference = _reference(reference, make_model, data, global_batch, optimizer)
    for name, values in reference.history.items():
        assert np.all(np.isfinite(values)), f"{name} is not finite: {values}"
    after = {w.path: keras.ops.convert_to_numpy(w) for w in reference.model.trainable_weights}
    before = reference.initial_trainable
    frozen = [path for path in before if np.array_equal(before[path], after[path])]
    assert not frozen, f"trainable weights did not change after fit: {frozen}"
    return reference.history


def check_replica_equivalence(
    make_model,
    data,
    global_batch,
    state_fn=None,
    optimizer=None,
    atol=1e-6,
    rtol=1e-5,
    reference=None,
):
    """Two replicas on two logical CPUs equal one replica on the same global batches.

    Compares every logged metric per step, every model weight (trainable and not, e.g.
    BatchNorm moving statistics) and ``state_fn(model)`` (a dict of arrays: queue, centre...).
    ``reference``: the one-replica :func:`train_reference` run of the same model, optimizer and
    ``data`` (trained here when ``None``).
    """
    strategy = two_replica_strategy()
    reference = _reference(reference, make_model, data, global_batch, optimizer)
    single, single_history = reference.model, reference.history
    with strategy.scope():
        mirrored = _compile(make_model(), optimizer)
    mirrored.set_weights(reference.initial_weights)
    mirrored_history = _fit(mirrored, data, global_batch)
    assert single_history.keys() == mirrored_history.keys()
    for name in single_history:
        np.testing.assert_allclose(
            mirrored_history[name],
            single_history[name],
            atol=atol,
            rtol=rtol,
            err_msg=f"metric {name!r} differs between 2 replicas and 1",
        )
    _assert_same_weights(
        _weights(mirrored), _weights(single), "2 replicas vs 1 replica", atol, rtol
    )
    if state_fn is not None:
        single_state, mirrored_state = state_fn(single), state_fn(mirrored)
        for key, value in single_state.items():
            np.testing.assert_allclose(
                mirrored_state[key],
                value,
                atol=atol,
                rtol=rtol,
                err_msg=f"state {key!r} differs between 2 replicas and 1",
            )
    return single_history, mirrored_history


def check_xla_step(
    make_model, data, global_batch, optimizer=None, atol=1e-4, rtol=1e-3, reference=None
):
    """The step compiles with ``jit_compile=True`` and matches the uncompiled step.

    ``reference``: the uncompiled :func:`train_reference` run on ``data`` (trained here when
    ``None``).
    """
    reference = _reference(reference, make_model, data, global_batch, optimizer)
    eager_history = reference.history
    compiled = _compile(make_model(), optimizer, jit_compile=True)
    compiled.set_weights(reference.initial_weights)
    compiled_history = _fit(compiled, data, global_batch)
    for name in eager_history:
        np.testing.assert_allclose(
            compiled_history[name],
            eager_history[name],
            atol=atol,
            rtol=rtol,
            err_msg=f"metric {name!r} differs between the XLA and the plain step",
        )
    return compiled_history


def check_mixed_precision(
    make_model,
    data,
    global_batch,
    policy="mixed_bfloat16",
    optimizer=None,
    atol=0.05,
    rtol=0.05,
    reference=None,
):
    """One step under a mixed-precision ``policy`` is finite and close to the float32 step.

    The model is built under ``policy`` (layers compute in bfloat16 / float16, variables stay
    float32), given the float32 model's initial weights and trained for one step on the same
    batch. Every logged term must be finite and within ``atol + rtol * |value|`` of the float32
    step's (losses are computed in float32, so the gap is the rounding of the activations:
    about 1e-2 relative for bfloat16's 8-bit mantissa); every weight must stay finite. Under
    ``mixed_float16`` Keras wraps the optimizer in a ``LossScaleOptimizer`` (checked).
    The step runs on the first global batch of ``data``; ``reference``: a float32
    :func:`train_reference` run on ``data``, whose first step is the one compared (one step on
    that batch is trained here when ``None``).
    """
    batch = {key: _take(value, global_batch) for key, value in data.items()}
    if reference is None:
        reference = train_reference(make_model, batch, global_batch, optimizer)
    else:
        reference = _reference(reference, make_model, data, global_batch, optimizer)
    expected = {name: values[:1] for name, values in reference.history.items()}
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        mixed = _compile(make_model(), optimizer)
    finally:
        keras.config.set_dtype_policy(previous)
    compute = {layer.compute_dtype for layer in mixed.encoder._flatten_layers(include_self=False)}
    assert keras.mixed_precision.Policy(policy).compute_dtype in compute, (
        f"no encoder layer computes in {policy}: {compute}"
    )
    mixed.set_weights(reference.initial_weights)
    history = _fit(mixed, batch, global_batch)
    for name, values in history.items():
        assert np.all(np.isfinite(values)), f"{name} is not finite under {policy}: {values}"
        np.testing.assert_allclose(
            values, expected[name], atol=atol, rtol=rtol, err_msg=f"{name} under {policy}"
        )
    for path, value in _weights(mixed):
        assert np.all(np.isfinite(value)), f"weight {path!r} is not finite under {policy}"
    if policy == "mixed_float16":
        assert isinstance(mixed.optimizer, keras.optimizers.LossScaleOptimizer)
    return history


def check_save_load(make_model, data, global_batch, tmp_path, state_fn=None, optimizer=None):
    """A ``.keras`` round trip restores config, embeddings, optimizer slots and method state."""
    keras.utils.set_random_seed(0)
    model = _compile(make_model(), optimizer)
    one_batch = {key: _take(value, global_batch) for key, value in data.items()}
    _fit(model, one_batch, global_batch)
    path = os.path.join(os.fspath(tmp_path), "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert _normalized(restored.get_config()) == _normalized(model.get_config())
    images = _images_of(data)[:global_batch]
    np.testing.assert_array_equal(
        restored.predict(images, verbose=0), model.predict(images, verbose=0)
    )
    if state_fn is not None:
        for key, value in state_fn(model).items():
            np.testing.assert_array_equal(state_fn(restored)[key], value, err_msg=key)
    second = {key: _take(value, global_batch, start=global_batch) for key, value in data.items()}
    if len(_images_of(second)) < global_batch:
        second = one_batch
    _fit(model, second, global_batch)
    _fit(restored, second, global_batch)
    _assert_same_weights(
        _weights(restored), _weights(model), "one more step after reloading", 1e-6, 1e-5
    )
    return restored


def _normalized(config):
    """The config as JSON would store it (tuples become lists)."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def _take(value, count, start=0):
    if isinstance(value, (tuple, list)):
        return type(value)(v[start : start + count] for v in value)
    return value[start : start + count]


_SERVE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["keras_ssl"] = None  # the exported model must not need keras_ssl
    import numpy as np
    import tensorflow as tf
    export_dir, images_path, output_path = sys.argv[1:4]
    encoder = tf.saved_model.load(export_dir)
    images = tf.constant(np.load(images_path))
    served = encoder.signatures["serving_default"](images=images)["embeddings"]
    direct = encoder.serve(images)["embeddings"]
    np.testing.assert_allclose(served.numpy(), direct.numpy(), atol=1e-6)
    np.save(output_path, served.numpy())
    """
)


def check_export(make_model, data, global_batch, tmp_path, atol=1e-5, reference=None):
    """The exported encoder serves the model's L2-normalised embeddings in a fresh process.

    The model is trained first (one step on the first global batch of ``data`` with the
    default optimizer, so BatchNorm statistics and weights are not the initial ones), or is
    the trained ``reference`` (:func:`train_reference`), which is exported without changing it.
    """
    if reference is None:
        first = {key: _take(value, global_batch) for key, value in data.items()}
        reference = train_reference(make_model, first, global_batch)
    model = reference.model
    export_dir = os.path.join(os.fspath(tmp_path), "encoder")
    export.export_encoder(model, export_dir)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, *model.image_shape), dtype=np.uint8)
    images_path = os.path.join(os.fspath(tmp_path), "images.npy")
    output_path = os.path.join(os.fspath(tmp_path), "served.npy")
    np.save(images_path, images)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", _SERVE_SCRIPT, export_dir, images_path, output_path],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.fspath(tmp_path),
        check=False,
    )
    assert result.returncode == 0, f"serving in a fresh process failed:\n{result.stderr[-3000:]}"
    features = model.predict(images, verbose=0)
    expected = features / np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(np.load(output_path), expected, atol=atol, rtol=1e-4)
    return export_dir
