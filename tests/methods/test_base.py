"""SSLMethod's shared behaviour: synchronised BatchNorm by default on several replicas."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, testing
from keras_ssl.augment.multicrop import multicrop
from keras_ssl.methods import BYOL, DINO, MoCo, SimCLR, SimSiam

GLOBAL_BATCH = 8


def plain_encoder():
    """A backbone built as a user would, with per-replica (unsynchronised) BatchNorm."""
    return backbones.SmallResNet((8, 8, 1), widths=(4, 8))


def batch_norm_layers(model):
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def synchronized_flags(model):
    layers = batch_norm_layers(model)
    assert layers, "the model has no BatchNorm to check"
    return {layer.synchronized for layer in layers}


def make_simclr(**kwargs):
    return SimCLR(plain_encoder(), projection_dim=8, **kwargs)


def make_byol(**kwargs):
    options = {"projection_hidden_dim": 8, "projection_dim": 4, "prediction_hidden_dim": 8}
    return BYOL(plain_encoder(), **{**options, "momentum": 0.9, **kwargs})


def make_simsiam(**kwargs):
    options = {"projection_hidden_dim": 8, "projection_dim": 8, "prediction_hidden_dim": 4}
    return SimSiam(plain_encoder(), **{**options, **kwargs})


def make_dino(**kwargs):
    options = {"out_dim": 16, "hidden_dim": 8, "bottleneck_dim": 4, "head_batch_norm": True}
    augmenter = multicrop((8, 8, 1), local_size=4, num_local=2)
    return DINO(plain_encoder(), augmenter=augmenter, **{**options, **kwargs})


@pytest.mark.parametrize("make", [make_simclr, make_byol, make_simsiam, make_dino])
def test_a_method_built_directly_on_two_replicas_synchronises_every_batch_norm(make):
    with testing.two_replica_strategy().scope():
        model = make()
    assert model.batch_norm_synchronized
    assert synchronized_flags(model) == {True}  # encoder, heads and teacher copies
    if make is not make_simclr:  # (SimCLR keeps its own synchronized_bn argument)
        assert model.get_config()["synchronized_bn"] is None  # auto wherever it is loaded


@pytest.mark.parametrize("make", [make_simclr, make_byol, make_simsiam, make_dino])
def test_one_replica_keeps_the_fast_per_device_batch_norm(make):
    model = make()
    assert not model.batch_norm_synchronized and synchronized_flags(model) == {False}


@pytest.mark.parametrize("make", [make_byol, make_simsiam, make_dino])
def test_the_user_opts_out_or_in(make):
    with testing.two_replica_strategy().scope():
        opted_out = make(synchronized_bn=False)
    assert synchronized_flags(opted_out) == {False}
    forced = make(synchronized_bn=True)  # one replica: the same statistics, on request
    assert synchronized_flags(forced) == {True}
    with pytest.raises(ValueError, match=r"`synchronized_bn` must be None, True or False"):
        make(synchronized_bn="yes")


def test_moco_keeps_per_replica_statistics_for_shuffle_bn():
    with testing.two_replica_strategy().scope():
        model = MoCo(plain_encoder(), queue_size=64, projection_dim=8)
    assert not model.batch_norm_synchronized and synchronized_flags(model) == {False}


def make_views(steps=2):
    rng = np.random.default_rng(0)
    views = tuple(rng.random((steps * GLOBAL_BATCH, 8, 8, 1), dtype=np.float32) for _ in (0, 1))
    return {"views": views}


@pytest.mark.parametrize("make", [make_simclr, pytest.param(make_byol, marks=pytest.mark.slow)])
def test_two_replicas_equal_one_with_a_plain_encoder(make):
    # The encoder and heads are built with per-replica BatchNorm, as a user writes them; the
    # 2-replica model synchronises them by default (synchronized_bn=None), so it trains exactly
    # like one device (before, each replica normalised with the statistics of its half batch).
    # The one-device model is asked for the synchronised layer too: by default it keeps the
    # fused kernel, whose two-pass variance differs from the synchronised E[x^2] - E[x]^2 by
    # float32 cancellation (up to 8e-6 on the weights here), a Keras numerics difference and not
    # the behaviour under test. Left: the cross-replica summation order, measured up to 1.5e-6
    # on weights of about 0.02-0.4 (rtol 7.5e-5 on the smallest), hence atol 1e-5; per-replica
    # statistics move the weights by more than 1e-4 (the test below).
    def make_model():
        one_device = tf.distribute.get_strategy().num_replicas_in_sync == 1
        return make(synchronized_bn=True if one_device else None)

    testing.check_replica_equivalence(make_model, make_views(), GLOBAL_BATCH, atol=1e-5)


def test_per_replica_batch_norm_does_not_equal_one_device():
    # The opt-out shows what the default fixes: half-batch statistics change the training.
    with pytest.raises(AssertionError, match="differs between 2 replicas and 1"):
        testing.check_replica_equivalence(
            lambda: make_byol(synchronized_bn=False), make_views(), GLOBAL_BATCH, atol=1e-4
        )


def test_fit_on_a_dataset_triggers_no_python_warning():
    model = make_simclr()
    model.compile(optimizer="adam")
    images = tf.data.Dataset.from_tensor_slices(make_views()["views"][0]).batch(GLOBAL_BATCH)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(images, epochs=1, verbose=0)
    assert [str(w.message) for w in caught] == []
    with pytest.warns(UserWarning, match="`shuffle=True` was passed"):  # the user's own choice
        model.fit(images, epochs=1, verbose=0, shuffle=True)


def test_the_most_derived_init_is_followed_by_one_build():
    builds = []

    class Counted(SimCLR):
        def build(self, input_shape=None):
            builds.append(hasattr(self, "extra"))
            super().build(input_shape)

    class WithExtraHead(Counted):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.extra = keras.layers.Dense(3)

        def build_heads(self, feature_shape):
            super().build_heads(feature_shape)
            self.extra.build(feature_shape)

    model = WithExtraHead(plain_encoder(), projection_dim=8)
    assert builds == [True]  # once, after the subclass made its head
    assert model.built and model.extra.built and model.projector.built


def test_the_default_augmenter_is_the_class_preset():
    class Flipping(SimCLR):
        default_preset = "crop_flip"
        default_preset_kwargs = {"crop_scale": (0.5, 1.0)}

    views = Flipping(plain_encoder(), projection_dim=8).augmenter(
        tf.zeros((2, 8, 8, 1)), training=True
    )
    assert len(views) == 1  # crop_flip makes one view, SimCLR's own preset two
    assert len(make_simclr().augmenter(tf.zeros((2, 8, 8, 1)), training=True)) == 2


@pytest.mark.parametrize(
    ("name", "preset"),
    [
        ("simclr", "simclr"),
        ("moco", "moco_v2"),
        ("nnclr", "byol"),
        ("moco_v3", "byol"),
        ("byol", "byol"),
        ("barlow_twins", "byol"),
        ("vicreg", "byol"),
        ("dino", "multicrop"),
        ("swav", "multicrop"),
        ("iic", "simclr"),
        ("rotation", "crop_flip"),
        ("relative_patch", "crop_flip"),
        ("jigsaw", "crop_flip"),
        ("deepcluster", "crop_flip"),
        ("autoencoder", "identity"),
        ("context_encoder", "identity"),
        ("vae", "identity"),
        ("bigan", "identity"),
    ],
)
def test_each_method_defaults_to_its_papers_augmentation(name, preset):
    from keras_ssl.methods import REGISTRY

    assert REGISTRY[name].default_preset == preset


def keras_default_encoder():
    """A user's encoder with Keras' default BatchNorm momentum (0.99)."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("make", [make_simclr, make_byol, make_dino])
def test_every_batch_norm_gets_the_papers_momentum_by_default(make):
    model = make()
    assert model.batch_norm_momentum == 0.9
    assert {layer.momentum for layer in batch_norm_layers(model)} == {0.9}
    kept = make(batch_norm_momentum=None)
    assert {layer.momentum for layer in batch_norm_layers(kept.encoder)} == {0.9}  # SmallResNet's
    assert type(model).from_config(model.get_config()).batch_norm_momentum == 0.9


def test_the_moving_statistics_follow_the_method_momentum_in_fit():
    # One step on a batch whose first-layer statistics are known: the moving mean becomes
    # momentum * 0 + (1 - momentum) * batch mean, for the method's momentum (not Keras' 0.99).
    for momentum in (0.9, 0.5):
        keras.utils.set_random_seed(0)
        encoder = keras_default_encoder()
        model = SimCLR(encoder, projection_dim=4, batch_norm_momentum=momentum)
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        views = make_views(steps=1)["views"]
        conv = encoder.layers[1]
        batch_mean = np.concatenate([conv(v).numpy() for v in views]).mean(axis=(0, 1, 2))
        model.train_on_batch({"views": views})
        norm = encoder.layers[2]
        np.testing.assert_allclose(
            norm.moving_mean.numpy(), (1 - momentum) * batch_mean, rtol=1e-4, atol=1e-7
        )
        assert norm.get_config()["momentum"] == momentum  # saved with the encoder


def test_keeping_the_encoder_momentum_and_bad_values():
    model = SimCLR(keras_default_encoder(), projection_dim=4, batch_norm_momentum=None)
    assert model.encoder.layers[2].momentum == 0.99
    for bad in (1.0, -0.1, "0.9", True):
        with pytest.raises(ValueError, match=r"`batch_norm_momentum` must be .*Fix: pass 0.9"):
            SimCLR(keras_default_encoder(), projection_dim=4, batch_norm_momentum=bad)
