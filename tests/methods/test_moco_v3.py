import inspect
import math
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, methods, testing
from keras_ssl.augment import RandomSolarize
from keras_ssl.losses import moco_v3_contrastive as ctr
from keras_ssl.methods.moco_v3 import MoCoV3

GLOBAL_BATCH = 8
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "moco_v3_fashion_mnist.py"
HEADS = {"projection_hidden_dim": 8, "projection_dim": 4, "prediction_hidden_dim": 8}


def resnet():
    return backbones.SmallResNet((8, 8, 1), widths=(4,), synchronized_bn=True)


def tiny_vit():
    return backbones.ViT((8, 8, 1), patch_size=4, dim=8, depth=1, num_heads=2)


def make_model(encoder=None, **kwargs):
    options = {
        **HEADS,
        "momentum": 0.9,
        "momentum_epochs": 4,  # the battery fits one step per epoch
        "synchronized_bn": True,
        "probe_classes": 3,
    }
    return MoCoV3(encoder or resnet(), **{**options, **kwargs})


def make_vit_model(**kwargs):
    return make_model(tiny_vit(), **kwargs)


def spread_vit(scale=25.0):
    """A tiny ViT whose class token depends on the image as much as a ResNet's features do.

    At its initialisation (truncated normal, std 0.02) a ViT maps every image to almost the
    same class token: on these random images the features' spread over the batch is about 1%
    of their norm (measured: std 0.0099, mean |x| 0.83). The projector's first BatchNorm
    divides by that spread, so float32 rounding (the summation order of synchronised
    BatchNorm and of the gradient all-reduce) grows about 100x: 1 and 2 replicas then differ by
    ~1e-4 relative in every gradient (measured), uniformly, as noise, not as a wrong term would.
    Kernels and embeddings scaled by ``scale`` (not the frozen patch projection) spread the
    features to std 0.27 (measured), and 2 replicas equal 1 to within float32 noise (atol 1e-5).
    """
    encoder = tiny_vit()
    for weight in encoder.weights:
        path = weight.path
        if ("kernel" in path and "projection" not in path) or path.endswith(
            ("class_token", "position_embedding")
        ):
            weight.assign(weight * scale)
    return encoder


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    views = tuple(rng.random((n, 8, 8, 1), dtype=np.float32) for _ in range(2))
    return {"views": views, "labels": rng.integers(0, 3, n)}


def key_state(model):
    """Every weight of the momentum encoder (EMA'd weights and its own BatchNorm statistics)."""
    weights = model.key_encoder.weights + model.key_projector.weights
    return {f"key_{i}": keras.ops.convert_to_numpy(w) for i, w in enumerate(weights)}


def online_key_pairs(model):
    return list(zip(model.encoder.weights, model.key_encoder.weights)) + list(
        zip(model.projector.weights, model.key_projector.weights)
    )


def patch_projection(model):
    return model.encoder.get_layer("patch_embedding").projection


# ------------------------------------------------------------------------ battery: ResNet
class TestBattery(testing.MethodBattery):
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    # The replica check and the round trip compare the momentum encoder too; the export serves
    # the query encoder.
    state_fn = staticmethod(key_state)
    # Keys gathered from both replicas (global negatives, global labels) and synchronised
    # BatchNorm: the 2-replica step is the 1-device step on the global batch. Synchronised
    # BatchNorm sums the moments in another order than one device; through the backbone's and
    # the heads' five BatchNorms (4 examples per replica) that float32 noise reaches 3.5e-6 in
    # the stem kernel after two steps on an idle machine and 6.2e-6 on a loaded one (measured;
    # the reduction order follows the thread pool), hence atol=1e-5. A structural error (keys
    # of one replica, a 1/N gradient) changes the loss or every update by O(1).
    replica_tolerance = {"atol": 1e-5}

    def check_history(self, history):
        assert set(history) == {"loss", "probe_loss", "probe_accuracy"}

    def check_restored(self, restored):
        assert isinstance(restored, MoCoV3) and restored.temperature == 1.0


# --------------------------------------------------------------------------- battery: ViT
# The larger weights of spread_vit() give ~10x larger gradients: a 10x smaller learning rate
# keeps the weight updates (and their float32 rounding) at the ResNet test's size. A structural
# error (keys of one replica only, labels without the replica offset, a 1/N gradient) changes
# the loss or every update by O(1), far above the tolerance.
SMALL_STEPS = {"class_name": "SGD", "config": {"learning_rate": 5e-3, "momentum": 0.9}}


def make_spread_vit_model():
    return make_model(spread_vit())


class TestViTBattery(testing.MethodBattery):
    # The fit check: every weight moves but the frozen patch projection.
    make_model = staticmethod(make_vit_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH
    state_fn = staticmethod(key_state)
    replica_model = staticmethod(make_spread_vit_model)
    replica_optimizer = SMALL_STEPS
    # As for the ResNet battery: synchronised BatchNorm in the heads sums in thread-pool order,
    # and a projector moving mean near zero (-0.0262) differed by 1.8e-6 between 2 replicas and
    # 1 under load (measured, CI of 2026-12-07); a structural error changes it by O(1).
    replica_tolerance = {"atol": 1e-5}
    # spread_vit(): at the plain initialisation the image-dependent part of the class token
    # (std 0.0099 at |x| 0.83) is about 3 bfloat16 steps (8-bit mantissa: 0.003 at 0.83), so
    # the bfloat16 step sees mostly rounding noise that the projector's BatchNorm then
    # normalises to unit scale (measured: loss 2.28 vs 3.40 in float32; mixed_float16 passes).
    mixed_precision_model = staticmethod(make_spread_vit_model)

    def check_restored(self, restored):
        # The round trip keeps the patch projection frozen.
        assert restored.freeze_patch_projection is True and restored.temperature == 0.2
        assert not patch_projection(restored).trainable


@pytest.mark.parametrize("make", [make_model, make_vit_model], ids=["resnet", "vit"])
def test_model_loss_is_the_symmetrised_ctr_of_per_view_passes(make):
    keras.utils.set_random_seed(0)
    model = make(probe_classes=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.plan_schedules(steps_per_epoch=1, epochs=4)  # train_on_batch: no fit to plan it
    # Move the momentum encoder away from the query encoder so that the two differ.
    for weight in model.key_projector.weights:
        weight.assign(weight + 0.1)
    twin = MoCoV3.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    views = tuple(tf.constant(v) for v in make_data(steps=1)["views"])
    # The paper's pseudo-code: each view through each network on its own (own BN statistics).
    q1, q2 = (
        twin.predictor(
            twin.projector(twin.encoder(v, training=True), training=True), training=True
        ).numpy()
        for v in views
    )
    k1, k2 = (
        twin.key_projector(twin.key_encoder(v, training=True), training=True).numpy() for v in views
    )
    t = model.temperature
    # ctr is checked against a NumPy reference of Algorithm 1 in tests/losses.
    expected = np.mean(ctr(q1, k2, t) + ctr(q2, k1, t))
    logs = model.train_on_batch({"views": views}, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-5)
    # Symmetric in the two views.
    swapped, _ = twin.compute_ssl_loss(views[::-1], training=True)
    np.testing.assert_allclose(float(swapped["loss"]), expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------- momentum encoder
def test_momentum_encoder_follows_by_ema_with_the_cosine_momentum():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, momentum=0.9, momentum_epochs=None)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.plan_schedules(steps_per_epoch=2, epochs=2)  # a run of 4 steps
    for weight in model.key_encoder.weights + model.key_projector.weights:
        if "moving" not in weight.path:
            weight.assign(weight + 1.0)
    assert not model.key_encoder.trainable_weights and not model.key_projector.trainable_weights
    assert not hasattr(model, "key_predictor")  # f_k has no prediction head
    online = model.encoder.trainable_weights + model.projector.trainable_weights
    online += model.predictor.trainable_weights
    assert {id(w) for w in model.trainable_weights} == {id(w) for w in online}
    data = make_data(steps=3)
    # m(k) = 1 - (1 - 0.9) (cos(pi k / 4) + 1) / 2 by hand: 0.9, 0.914645, 0.95.
    expected_taus = [0.9, 1 - 0.1 * (math.cos(math.pi / 4) + 1) / 2, 0.95]
    for step, expected_tau in enumerate(expected_taus):
        before = [t.numpy() for _, t in online_key_pairs(model)]
        rows = slice(step * GLOBAL_BATCH, (step + 1) * GLOBAL_BATCH)
        model.train_on_batch({"views": tuple(v[rows] for v in data["views"])})
        tau = float(model.momentum_at(step))
        assert tau == pytest.approx(expected_tau, abs=1e-7)
        tau32 = np.float32(tau)
        for (source, target), old in zip(online_key_pairs(model), before):
            if source.trainable:
                ema = tau32 * old + (np.float32(1) - tau32) * source.numpy()
                np.testing.assert_allclose(target.numpy(), ema, rtol=1e-6, atol=1e-7)
            else:  # BatchNorm moving statistics: the momentum encoder's own
                assert not np.allclose(target.numpy(), old)
    assert float(model.momentum_at(4)) == pytest.approx(1.0)


class RecordTau(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.taus = []

    def on_train_batch_end(self, batch, logs=None):
        self.taus.append(float(self.model.momentum_at(self.model.optimizer.iterations - 1)))


def test_default_momentum_is_a_cosine_from_0_99_to_1_over_the_run():
    model = MoCoV3(backbones.SmallResNet((8, 8, 1), widths=(4,)), **HEADS)
    assert (model.momentum, model.final_momentum, model.momentum_epochs) == (0.99, 1.0, None)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    record = RecordTau()
    dataset = testing.make_dataset(make_data(steps=3), GLOBAL_BATCH)
    model.fit(dataset, epochs=2, callbacks=[record], verbose=0)
    total = 6  # 3 real steps per epoch x 2 epochs
    expected = [1 - 0.01 * (math.cos(math.pi * k / total) + 1) / 2 for k in range(total)]
    np.testing.assert_allclose(record.taus, expected, rtol=0, atol=1e-7)


# ---------------------------------------------------------------- random patch projection
def test_vit_patch_projection_stays_at_its_random_initialisation():
    keras.utils.set_random_seed(0)
    model = make_vit_model(probe_classes=None)
    projection = patch_projection(model)
    key_projection = model.key_encoder.get_layer("patch_embedding").projection
    assert model.freeze_patch_projection is True and not projection.trainable
    frozen = {id(w) for w in projection.weights}
    assert frozen and not frozen & {id(w) for w in model.trainable_weights}
    embedding = model.encoder.get_layer("patch_embedding")
    assert embedding.class_token.trainable and embedding.position_embedding.trainable
    before = [w.numpy() for w in projection.weights]
    tokens_before = embedding.position_embedding.numpy()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.fit(testing.make_dataset(make_data(), GLOBAL_BATCH), epochs=2, verbose=0)
    for weight, old, key in zip(projection.weights, before, key_projection.weights):
        np.testing.assert_array_equal(weight.numpy(), old)
        np.testing.assert_array_equal(key.numpy(), old)  # the momentum copy stays equal
    assert not np.allclose(embedding.position_embedding.numpy(), tokens_before)


def test_vit_patch_projection_trains_when_not_frozen():
    keras.utils.set_random_seed(0)
    model = make_vit_model(probe_classes=None, freeze_patch_projection=False)
    projection = patch_projection(model)
    assert projection.trainable and model.freeze_patch_projection is False
    kernel = projection.kernel.numpy()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.fit(testing.make_dataset(make_data(), GLOBAL_BATCH), epochs=2, verbose=0)
    assert not np.allclose(projection.kernel.numpy(), kernel)


def test_resnet_has_no_patch_projection_to_freeze():
    model = make_model()
    assert model.freeze_patch_projection is False
    assert all(layer.trainable for layer in model.encoder._flatten_layers())
    assert MoCoV3.from_config(model.get_config()).freeze_patch_projection is False
    with pytest.raises(ValueError, match=r"`freeze_patch_projection=True` needs an encoder with"):
        make_model(freeze_patch_projection=True)


# ------------------------------------------------------------------------------ defaults
def test_defaults_are_the_papers():
    assert methods.REGISTRY["moco_v3"] is MoCoV3 and methods.MoCoV3 is MoCoV3
    defaults = {
        name: p.default for name, p in inspect.signature(MoCoV3.__init__).parameters.items()
    }
    assert defaults["projection_hidden_dim"] == defaults["prediction_hidden_dim"] == 4096
    assert defaults["projection_dim"] == 256
    assert (defaults["momentum"], defaults["final_momentum"]) == (0.99, 1.0)
    assert defaults["temperature"] is None and defaults["freeze_patch_projection"] is None
    model = MoCoV3(backbones.SmallResNet((8, 8, 1), widths=(4,)), **HEADS)
    # 3-layer projector and 2-layer predictor, BatchNorm on every layer, outputs included.
    assert model.projector.hidden_dims == (8, 8) and model.predictor.hidden_dims == (8,)
    assert model.projector.batch_norm and model.predictor.batch_norm
    assert model.projector.output_batch_norm and model.predictor.output_batch_norm
    assert model.projector.output_dim == model.predictor.output_dim == 4
    assert model.temperature == 1.0  # ResNet
    assert MoCoV3(tiny_vit(), **HEADS).temperature == 0.2  # ViT
    assert MoCoV3(tiny_vit(), temperature=0.5, **HEADS).temperature == 0.5
    first, second = (list(map(type, p)) for p in model.augmenter.pipelines)
    assert RandomSolarize in second and RandomSolarize not in first  # BYOL's preset


# ------------------------------------------------------------------------------- config
def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "moco_v3" and config.backbone == "vit"
    assert config.augment.preset == "byol" and config.method_kwargs.temperature == 0.2
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, MoCoV3) and model.momentum == 0.99 and model.temperature == 0.2
    assert not patch_projection(model).trainable


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"temperature": 0}, r"`temperature` must be a positive number; received 0.*Fix"),
        ({"temperature": "0.2"}, r"`temperature` must be a positive number; received '0.2'"),
        ({"projection_dim": 0}, r"`projection_dim` must be an integer >= 1; received 0.*Fix"),
        ({"projection_hidden_dim": 2.5}, r"`projection_hidden_dim` must be an integer"),
        ({"prediction_hidden_dim": -1}, r"`prediction_hidden_dim` must be an integer"),
        ({"prediction_output_batch_norm": 1}, r"must be True or False; received 1.*Fix"),
        ({"freeze_patch_projection": "yes"}, r"must be None, True or False; received 'yes'"),
        ({"momentum": 1.5}, r"`momentum` must be a number in \[0, 1\]; received 1.5"),
    ],
)
def test_bad_arguments_raise(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_model(**kwargs)


def test_wrong_number_of_views_raises():
    model = make_model()
    views = tuple(tf.zeros((4, 8, 8, 1)) for _ in range(3))
    with pytest.raises(ValueError, match=r"exactly 2 views per image; received 3.*Fix"):
        model.compute_ssl_loss(views, training=False)
