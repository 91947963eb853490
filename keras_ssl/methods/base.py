"""``SSLMethod``: the ``keras.Model`` every self-supervised method subclasses.

A method overrides :meth:`SSLMethod.compute_ssl_loss` (and :meth:`SSLMethod.after_optimizer_step`
when it keeps state such as an EMA teacher or a queue; values the update needs from the loss,
such as MoCo's keys, travel from one to the other as the optional third return value of
``compute_ssl_loss``). The base class owns everything else:
unpacking batches in any accepted form, augmentation, the optional online linear probe, loss
scaling for ``tf.distribute`` and mixed precision, the optimizer step, metrics, validation of
inputs, (de)serialisation, the run's schedule plan and synchronised BatchNorm.

Schedules in epochs: a method's schedules (EMA momentum, warm-ups, frozen layers) are given in
epochs and converted to optimizer steps inside the step, from two non-trainable variables the
base sets when ``fit`` starts: the real steps per epoch of the data and the planned steps of
the run (``epochs * steps_per_epoch``). So a schedule of N epochs ends after exactly N epochs
of whatever data the model is fit on, the compiled (XLA, distributed) step reads the current
plan, and a checkpoint restores it.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.callbacks.progbar import ProbeProgbar, probe_keys
from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.methods.short_runs import warn_if_short
from keras_ssl.validation import check_in_range, check_int


@keras.saving.register_keras_serializable(package="keras_ssl")
class SSLMethod(keras.Model):
    """Base class of keras_ssl's self-supervised methods.

    Accepted batches (from ``fit``, ``evaluate``): images ``[batch, H, W, C]`` (``uint8`` or
    float in ``[0, 1]``), ``(images, labels)``, ``{"images": ..., "labels": ...}``, or views made
    in the input pipeline ``{"views": (view_1, view_2, ...), "labels": ...}``. Raw images are
    augmented in the step by ``augmenter``; labels are optional and feed only the online probe.

    ``model(images)`` and ``model.predict(images)`` return the encoder's representations.

    Args:
        encoder: a built ``keras.Model`` mapping float ``[0, 1]`` images ``[batch, H, W, C]`` to
            features ``[batch, D]`` (see ``keras_ssl.backbones``).
        augmenter: a layer mapping a batch of images to a tuple of views; ``None`` uses the
            method's default preset for the encoder's input shape.
        probe_classes: number of classes of an online linear probe trained on stop-gradient
            features of the first view (reported as ``probe_accuracy``); ``None`` for no probe.
        synchronized_bn: BatchNorm statistics of the encoder and heads over the GLOBAL batch
            (``BatchNormalization(synchronized=True)``) under ``tf.distribute``. ``None`` (auto):
            synchronised when the method is built under a strategy with several replicas and
            the class's :attr:`synchronize_batch_norm` is True (SimCLR, BYOL, Barlow Twins and
            DINO train with global BatchNorm); ``True``: always; ``False``: the BatchNorm layers
            are left as built (per-replica statistics, unless built synchronised).
        batch_norm_momentum: momentum of the moving statistics of every BatchNorm layer in the
            encoder and heads, set when the method is built (default 0.9: the papers' code,
            i.e. SimCLR's TensorFlow ``batch_norm_decay`` and PyTorch's ``momentum=0.1``).
            Keras' own default, 0.99, averages over the last ~100 steps: after a short run on a
            small data set the encoder's moving statistics still hold much of their initial
            values and of early weights, and frozen features probe worse than the weights are
            (``benchmarks/own_data.py``). ``None`` leaves the layers as built.

    Schedules: methods whose schedules are in epochs (:attr:`uses_epoch_schedules`) need to
    know the steps per epoch. ``fit`` sets them (``self.params["steps"]``: the dataset's
    cardinality or ``steps_per_epoch``) and raises a ``ValueError`` when they are unknown (an
    infinite dataset without ``steps_per_epoch``); custom loops call :meth:`plan_schedules`.
    """

    #: Names of the loss terms :meth:`compute_ssl_loss` returns (each gets a metric).
    loss_terms = ("loss",)

    #: Whether BatchNorm is synchronised across replicas by default (``synchronized_bn=None``)
    #: for this method (global-batch statistics); MoCo's shuffle-BN needs per-replica ones.
    synchronize_batch_norm = True

    #: The augmentation used when no ``augmenter`` is given: a name in
    #: ``keras_ssl.augment.PRESETS``, called with the encoder's input shape and
    #: :attr:`default_preset_kwargs` (methods whose default depends on arguments override
    #: :meth:`default_augmenter`).
    default_preset = "simclr"
    default_preset_kwargs = {}

    #: Planned optimizer steps below which :meth:`plan_schedules` warns that this method's
    #: defaults measured no gain over a random-init encoder (``None``: no such measurement;
    #: see :mod:`keras_ssl.methods.short_runs`).
    short_run_steps = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _building_init(cls.__dict__["__init__"])

    def __init__(
        self,
        encoder,
        augmenter=None,
        probe_classes=None,
        synchronized_bn=None,
        batch_norm_momentum=0.9,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_encoder(encoder)
        if batch_norm_momentum is not None:
            batch_norm_momentum = check_in_range(
                batch_norm_momentum,
                "batch_norm_momentum",
                0,
                1,
                fix="pass 0.9 (the papers' value), or None to keep the layers' own momentum.",
                high_open=True,
            )
        self.batch_norm_momentum = batch_norm_momentum
        if synchronized_bn not in (None, True, False):
            raise ValueError(
                f"`synchronized_bn` must be None, True or False; received {synchronized_bn!r}. "
                "Fix: None synchronises BatchNorm on several replicas (the default), True always, "
                "False never."
            )
        self.synchronized_bn = synchronized_bn
        replicas = self.distribute_strategy.num_replicas_in_sync
        #: Whether this method's BatchNorm layers use global-batch statistics (resolved).
        self.batch_norm_synchronized = (
            bool(synchronized_bn)
            if synchronized_bn is not None
            else bool(type(self).synchronize_batch_norm and replicas > 1)
        )
        # The run's schedule plan, set when fit starts (0 = not planned yet); see plan_schedules.
        self.schedule_steps_per_epoch = self.add_weight(
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            name="schedule_steps_per_epoch",
        )
        self.schedule_total_steps = self.add_weight(
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            name="schedule_total_steps",
        )
        if probe_classes is not None and (not isinstance(probe_classes, int) or probe_classes < 2):
            raise ValueError(
                f"`probe_classes` must be an integer >= 2 or None; received {probe_classes!r}. "
                "Fix: pass the number of classes in the labels (e.g. 10), or None for no probe."
            )
        self.encoder = encoder
        self.image_shape = tuple(encoder.input_shape[1:])
        self.feature_dim = int(encoder.output_shape[-1])
        self.augmenter = augmenter if augmenter is not None else self.default_augmenter()
        self.probe_classes = probe_classes
        self.probe = keras.layers.Dense(probe_classes, name="probe") if probe_classes else None
        self.trackers = [keras.metrics.Mean(name=term) for term in self.loss_terms]
        if self.probe is not None:
            self.trackers += [
                keras.metrics.Mean(name="probe_loss"),
                keras.metrics.SparseCategoricalAccuracy(name="probe_accuracy"),
            ]

    # ----------------------------------------------------------------- hooks for subclasses
    def default_augmenter(self):
        """The augmenter used when no ``augmenter`` is given: :attr:`default_preset` with
        :attr:`default_preset_kwargs`, adapted to the encoder's input size and channels
        (``keras_ssl.augment.presets.default_augmenter``: milder crops on small images,
        brightness/contrast jitter for 1-channel images, the papers' recipe on RGB images of
        96 px and more)."""
        from keras_ssl.augment.presets import default_augmenter

        return default_augmenter(
            self.default_preset, self.image_shape, **self.default_preset_kwargs
        )

    def build_heads(self, feature_shape):
        """Builds the method's own layers; ``feature_shape`` is ``(None, D)``."""

    def compute_ssl_loss(self, views, training):
        """Computes the self-supervised loss on this replica's views.

        Args:
            views: tuple of float32 view batches ``[n, H, W, C]`` (``n`` = per-replica batch).
            training: whether layers run in training mode.

        Returns:
            ``(terms, features)`` or ``(terms, features, updates)``: ``terms`` maps each name in
            :attr:`loss_terms` to a scalar; ``terms["loss"]`` is minimised. Every term is this
            replica's share: its mean over replicas equals the loss of one device on the global
            batch (gather or all-reduce the batch-level quantities with
            ``keras_ssl.distribute``). ``features`` are the encoder's representations of the
            first view ``[n, D]`` (they feed the online probe). ``updates``, a dict of tensors of
            this step, is passed to :meth:`after_optimizer_step` as keyword arguments after the
            optimizer step of a training step (and dropped in evaluation).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement compute_ssl_loss().")

    def after_optimizer_step(self):
        """Updates method state after the optimizer step (EMA teacher, queue, centre).

        A method whose ``compute_ssl_loss`` returns ``updates`` takes them as keyword arguments
        (``def after_optimizer_step(self, keys)``)."""

    def view_shape(self, index):
        """Expected ``(H, W, C)`` of view ``index`` (``None`` entries are not checked)."""
        return self.image_shape

    @property
    def uses_epoch_schedules(self):
        """Whether a schedule of this method is in epochs, so ``fit`` must know the steps per
        epoch (subclasses with schedules override it)."""
        return False

    # -------------------------------------------------------------------- schedules
    def plan_schedules(self, steps_per_epoch, epochs):
        """Sets the run the epoch schedules are converted with: ``steps_per_epoch`` optimizer
        steps per epoch, ``epochs`` epochs in all (``fit`` calls it when it starts; call it
        before a custom loop of ``train_step`` / ``train_on_batch``). Warns
        (:class:`~keras_ssl.methods.short_runs.ShortRunWarning`) when the run is shorter than
        :attr:`short_run_steps`."""
        fix = "pass the optimizer steps of one epoch and the number of epochs of the run."
        steps_per_epoch = check_int(steps_per_epoch, "steps_per_epoch", 1, fix)
        epochs = check_int(epochs, "epochs", 1, fix)
        total_steps = int(steps_per_epoch) * int(epochs)
        self.schedule_steps_per_epoch.assign(int(steps_per_epoch))
        self.schedule_total_steps.assign(total_steps)
        warn_if_short(self, total_steps)

    def epochs_to_steps(self, epochs=None):
        """Optimizer steps of ``epochs`` epochs (float32 tensor; ``None``: the whole run) in
        the current plan; 0 before any plan. Read inside the step, so it follows the plan."""
        if epochs is None:
            return tf.cast(self.schedule_total_steps, tf.float32)
        return float(epochs) * tf.cast(self.schedule_steps_per_epoch, tf.float32)

    def _check_planned(self, where):
        if self.uses_epoch_schedules and int(self.schedule_steps_per_epoch.numpy()) < 1:
            raise ValueError(
                f"{type(self).__name__} has schedules in epochs, but {where} was called before "
                "the steps per epoch were known. Fix: call "
                "model.plan_schedules(steps_per_epoch, epochs) first, or train with model.fit."
            )

    # ------------------------------------------------------------------------ Keras API
    def build(self, input_shape=None):
        feature_shape = (None, self.feature_dim)
        if not self.augmenter.built:
            self.augmenter.build((None, *self.image_shape))
        if self.probe is not None:
            self.probe.build(feature_shape)
        self.build_heads(feature_shape)
        # Encoder, heads and teacher copies: every BatchNorm reduces its moments over replicas
        # when synchronised (keras_ssl.layers.BatchNormalization then takes the Keras path) and
        # averages them with the method's momentum.
        for layer in self._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, keras.layers.BatchNormalization):
                if self.batch_norm_synchronized:
                    layer.synchronized = True
                if self.batch_norm_momentum is not None:
                    layer.momentum = self.batch_norm_momentum

    @property
    def export_encoder(self):
        """The encoder a trained method is used through: ``model(images)``, the kNN and linear
        probes, ``keras-ssl eval`` and ``keras_ssl.export`` all use it. The trained ``encoder``
        here; methods whose paper evaluates another network override it (DINO: the teacher)."""
        return self.encoder

    def call(self, inputs, training=False):
        images = to_float_images(inputs)
        check_image_batch(images, self.image_shape)
        return tf.cast(self.export_encoder(images, training=training), tf.float32)

    @property
    def metrics(self):
        return list(self.trackers)

    def train_step(self, data):
        views, labels = self.unpack_batch(data)
        trainable = self.trainable_variables
        with tf.GradientTape() as tape:
            terms, features, updates = _loss_outputs(self.compute_ssl_loss(views, training=True))
            total = terms["loss"]
            if self.probe is not None and labels is not None:
                probe_loss = self._probe_update(features, labels)
                total = total + probe_loss
            # Gradients are summed over replicas: scale so the sum is the global-batch gradient.
            scaled = self.optimizer.scale_loss(total / distribute.num_replicas())
        gradients = tape.gradient(scaled, trainable)
        pairs = [(g, v) for g, v in zip(gradients, trainable) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        self.after_optimizer_step(**updates)
        self._update_loss_trackers(terms)
        return self._step_logs()

    def test_step(self, data):
        views, labels = self.unpack_batch(data)
        terms, features, _ = _loss_outputs(self.compute_ssl_loss(views, training=False))
        if self.probe is not None and labels is not None:
            self._probe_update(features, labels)
        self._update_loss_trackers(terms)
        return self._step_logs()

    def predict_step(self, data):
        if isinstance(data, (tuple, list)):  # (x,) or (images, labels)
            data = data[0]
        if isinstance(data, dict):
            data = data["images"] if "images" in data else data["views"][0]
        return self(data, training=False)

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        """``keras.Model.fit`` after checking the input (shapes, dtypes, batch divisibility).

        ``x`` may be a ``tf.data.Dataset`` (batched, ideally with ``drop_remainder=True``) of any
        accepted batch form, or a NumPy array of images (``y`` then holds optional labels).
        """
        self._check_fit_input(x, batch_size)
        if isinstance(x, tf.data.Dataset):
            # Keras ignores shuffle for datasets (they shuffle themselves) but warns about its
            # own default shuffle=True on every fit; an explicit shuffle=True still warns.
            kwargs.setdefault("shuffle", False)
        callbacks = kwargs.pop("callbacks", None)
        planner = _PlanSchedules()
        if isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks.append(planner)
            planner.set_model(self)
            planner.set_params(callbacks.params)
        else:
            # Last, so that it runs after BackupAndRestore restores a checkpoint: the plan is
            # the current fit's.
            callbacks = [*(callbacks or []), planner]
            if not any(isinstance(c, keras.callbacks.ProgbarLogger) for c in callbacks):
                callbacks.append(ProbeProgbar(probe_keys(callbacks)))
        return super().fit(x, y, batch_size=batch_size, callbacks=callbacks, **kwargs)

    def train_on_batch(self, *args, **kwargs):
        self._check_planned("train_on_batch")
        return super().train_on_batch(*args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras peeks at a batch and reduces it across replicas only to infer shapes for
        # building; methods are fully built at construction, and that reduction fails for
        # nested batches under MultiWorkerMirroredStrategy (Keras 3.15). Only the optimizer
        # is left to build.
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    # -------------------------------------------------------------------- batches
    def unpack_batch(self, data):
        """Returns ``(views, labels)`` from a batch in any accepted form (see class docs)."""
        views, images, labels = None, None, None
        if isinstance(data, (tuple, list)):  # (x,), (x, y) or (x, y, sample_weight)
            data, labels = data[0], (data[1] if len(data) > 1 else None)
        if isinstance(data, dict):
            if "views" in data:
                views = tuple(data["views"])
            elif "images" in data:
                images = data["images"]
            else:
                raise ValueError(
                    f"A dict batch must hold 'views' or 'images'; received keys {sorted(data)}. "
                    "Fix: yield {'images': x, 'labels': y} or {'views': (v1, v2), 'labels': y}."
                )
            labels = data.get("labels", labels)
        else:
            images = data
        if views is None:
            check_image_batch(images, self.image_shape)
            views = tuple(self.augmenter(images))
        for index, view in enumerate(views):
            check_image_batch(view, self.view_shape(index), name=f"views[{index}]")
        views = tuple(to_float_images(view) for view in views)
        if labels is not None:
            labels = _flat_labels(labels)
        return views, labels

    def _step_logs(self):
        logs = {metric.name: metric.result() for metric in self.metrics}
        if _multi_worker(self.distribute_strategy):
            # Keras 3.15 combines per-replica logs with reduce(MEAN, axis=0) under a
            # multi-worker strategy, which needs a leading axis to reduce over.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _probe_update(self, features, labels):
        logits = tf.cast(self.probe(tf.stop_gradient(features)), tf.float32)
        losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        probe_loss = tf.reduce_mean(losses)
        self._metric("probe_loss").update_state(probe_loss)
        self._metric("probe_accuracy").update_state(labels, logits)
        return probe_loss

    def _update_loss_trackers(self, terms):
        for term in self.loss_terms:
            self._metric(term).update_state(terms[term])

    def _metric(self, name):
        return next(metric for metric in self.trackers if metric.name == name)

    def _check_fit_input(self, x, batch_size):
        replicas = self.distribute_strategy.num_replicas_in_sync
        if isinstance(x, np.ndarray):
            check_image_batch(x, self.image_shape, name="x")
            distribute.per_replica_batch_size(batch_size or 32, self.distribute_strategy)
            return
        if not isinstance(x, tf.data.Dataset):
            return
        spec = x.element_spec
        if isinstance(spec, dict):
            spec = spec.get("views", (spec.get("images"),))[0]
        elif isinstance(spec, (tuple, list)):
            spec = spec[0]
        if not isinstance(spec, tf.TensorSpec):
            return
        check_image_batch(spec, None, name="dataset images")
        batch = spec.shape[0]
        if batch is not None:
            distribute.per_replica_batch_size(batch, self.distribute_strategy)
        elif replicas > 1:
            raise ValueError(
                f"Training on {replicas} replicas needs batches of a fixed size; received a "
                "dataset whose batch dimension is unknown. Fix: batch with drop_remainder=True "
                "(keras_ssl.datasets.make_ssl_dataset does)."
            )

    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "augmenter": keras.saving.serialize_keras_object(self.augmenter),
            "probe_classes": self.probe_classes,
            "synchronized_bn": self.synchronized_bn,
            "batch_norm_momentum": self.batch_norm_momentum,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "augmenter"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def check_epochs(value, name, allow_none=False):
    """Validates a schedule length in epochs (a non-negative number, or None when allowed)."""
    if value is None and allow_none:
        return None
    check_in_range(
        value,
        name,
        0,
        fix=f"pass a length in epochs (e.g. 1, 30 or 0.5{', or None' if allow_none else ''}); "
        "fit converts it with the real steps per epoch.",
    )
    return value


class _PlanSchedules(keras.callbacks.Callback):
    """Hands ``fit``'s steps per epoch and epochs to :meth:`SSLMethod.plan_schedules`."""

    def on_train_begin(self, logs=None):
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        if steps:
            self.model.plan_schedules(int(steps), int(epochs))
        elif self.model.uses_epoch_schedules:
            raise ValueError(
                f"{type(self.model).__name__} has schedules in epochs, so fit must know the "
                "steps per epoch; received data whose number of batches is unknown (an infinite "
                "or filtered dataset). Fix: pass steps_per_epoch to fit."
            )


def _multi_worker(strategy):
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def check_encoder(encoder):
    """Raises a ``ValueError`` unless ``encoder`` is a ``keras.Model`` a method can train."""
    if not isinstance(encoder, keras.Model):
        raise ValueError(
            f"`encoder` must be a keras.Model; received {type(encoder).__name__}. Fix: use "
            "keras_ssl.backbones.ResNet18(input_shape=...) or backbones.from_keras_model(model)."
        )
    try:
        input_shape, output_shape = encoder.input_shape, encoder.output_shape
    except (AttributeError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"`encoder` must be built with a known input shape; {encoder.name!r} is not "
            f"({error}). Fix: build it as a functional model with keras.Input(shape=(H, W, C))."
        ) from error
    if len(input_shape) != 4 or None in input_shape[1:]:
        raise ValueError(
            f"`encoder` must take images [batch, H, W, C] of a fixed size; received input shape "
            f"{input_shape}. Fix: build it with input_shape=(H, W, C)."
        )
    if len(output_shape) != 2:
        raise ValueError(
            f"`encoder` must output pooled features [batch, D]; received output shape "
            f"{output_shape}. Fix: add global pooling (backbones.from_keras_model does)."
        )


def _loss_outputs(outputs):
    """``(terms, features, updates)`` of ``compute_ssl_loss``'s two or three return values."""
    if len(outputs) == 2:
        return (*outputs, {})
    return outputs


def _flat_labels(labels):
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 2 and labels.shape[-1] == 1:
        labels = tf.squeeze(labels, axis=-1)
    if labels.shape.rank != 1 or not (labels.dtype.is_integer or labels.dtype.is_floating):
        raise ValueError(
            f"Labels must be class indices [batch]; received {labels.dtype.name} labels of "
            f"shape {tuple(labels.shape)}. Fix: pass integer class ids (not one-hot)."
        )
    return tf.cast(labels, tf.int32)


def _building_init(init):
    """Wraps a method class's ``__init__`` so that the outermost one ends with ``build()``.

    Methods are fully built when constructed (heads, teacher copies, synchronised BatchNorm;
    see :meth:`SSLMethod.build`). A subclass ``__init__`` creates its layers after
    ``super().__init__``, so the build must come after the most derived ``__init__``: each
    class's ``__init__`` is wrapped, and only the outermost call builds.
    """

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        outermost = not self.__dict__.get("_constructing", False)
        object.__setattr__(self, "_constructing", True)  # untracked by Keras
        try:
            init(self, *args, **kwargs)
        finally:
            if outermost:
                object.__setattr__(self, "_constructing", False)
        if outermost and not self.built:
            self.build()

    return __init__


def check_single_view(views, method):
    """Raises a ``ValueError`` unless ``views`` holds exactly one view (one-view methods)."""
    if len(views) != 1:
        raise ValueError(
            f"{method} uses exactly 1 view per image; received {len(views)}. Fix: use an "
            "augmenter with one view (keras_ssl.augment.presets.identity or crop_flip)."
        )
