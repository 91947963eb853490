"""Tests for keras_ssl.evaluation.segmentation: metrics against hand counts and NumPy, U-Net
transfer on tiny canvases, and the ``segmentation`` eval protocol."""

import os
import types

import numpy as np
import pytest

from keras_ssl.backbones import SmallResNet
from keras_ssl.datasets.segmentation import make_canvases
from keras_ssl.evaluation import protocols
from keras_ssl.evaluation.segmentation import (
    SEGMENTATION_OPTIONS,
    segmentation_metrics,
    segmentation_protocol,
    segmentation_transfer,
)


def test_hand_computed_iou():
    y_true = np.array([[0, 0, 1, 1]])
    y_pred = np.array([[0, 1, 1, 1]])
    result = segmentation_metrics(y_true, y_pred, num_classes=4)
    # class 0: 1/2, class 1: 2/3, classes 2 and 3 absent from both -> left out.
    assert result["mean_iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert result["pixel_accuracy"] == pytest.approx(3 / 4)
    assert np.isnan(result["iou"][2:]).all()


def test_matches_numpy_reference_on_fixed_predictions():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, (3, 8, 8))
    y_pred = np.where(rng.random((3, 8, 8)) < 0.6, y_true, rng.integers(0, 4, (3, 8, 8)))
    ious = []
    for c in range(6):
        union = np.logical_or(y_true == c, y_pred == c).sum()
        if union:
            ious.append(np.logical_and(y_true == c, y_pred == c).sum() / union)
    result = segmentation_metrics(y_true, y_pred, num_classes=6)
    assert result["mean_iou"] == pytest.approx(np.mean(ious), abs=1e-12)
    assert result["pixel_accuracy"] == pytest.approx(np.mean(y_true == y_pred))


def test_errors():
    with pytest.raises(ValueError, match=r"received shapes \(2,\) and \(3,\)"):
        segmentation_metrics([0, 1], [0, 1, 1], 2)
    with pytest.raises(ValueError, match=r"expected ids in \[0, 2\).*Fix"):
        segmentation_metrics([0, 2], [0, 1], 2)


def _tiny_canvases(count, seed):
    rng = np.random.default_rng(99)
    pool = rng.integers(0, 256, (6, 6, 6), dtype=np.uint8)
    return make_canvases(pool, np.arange(6) % 3, count, canvas_size=16, garments=(1, 2), seed=seed)


@pytest.mark.slow  # full transfer run with plots; the toy-task and protocol tests stay default
def test_transfer_results_weights_and_plots(tmp_path):
    encoder = SmallResNet((16, 16, 1), widths=(4, 8))
    before = [np.array(w) for w in encoder.weights]
    result = segmentation_transfer(
        encoder,
        _tiny_canvases(24, 0),
        _tiny_canvases(6, 1),
        num_classes=4,
        fractions=(0.5, 1.0),
        epochs=1,
        min_steps=2,
        batch_size=8,
        workdir=str(tmp_path),
        grid_images=2,
        verbose=0,
    )
    assert set(result["results"]) == {"ssl", "random_init"}
    for init in ("ssl", "random_init"):
        assert set(result["results"][init]) == {"frozen", "finetune"}
        for mode, runs in result["results"][init].items():
            assert [runs[f]["train_images"] for f in ("0.5", "1")] == [12, 24]
            assert [runs[f]["steps"] for f in ("0.5", "1")] == [2, 3]
            for run in runs.values():
                assert 0 <= run["mean_iou"] <= 1 and 0 <= run["pixel_accuracy"] <= 1
                if mode == "frozen":
                    assert run["encoder_weight_change"] == 0.0
                else:
                    assert run["encoder_weight_change"] > 0
    for weight, value in zip(encoder.weights, before):  # the caller's encoder is untouched
        np.testing.assert_array_equal(np.array(weight), value)
    assert result["plots"] == ["label_efficiency.png", "segmentation_grid.png"]
    for name in result["plots"]:
        assert os.path.getsize(tmp_path / name) > 1000


def test_transfer_learns_a_toy_task():
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 2, (80, 4, 4)).repeat(4, 1).repeat(4, 2)
    images = (blocks * 200 + rng.integers(0, 40, (80, 16, 16))).astype(np.uint8)[..., None]
    masks = blocks.astype(np.uint8)  # class 1 where the 4x4 block is bright
    result = segmentation_transfer(
        SmallResNet((16, 16, 1), widths=(8, 16)),
        (images[:64], masks[:64]),
        (images[64:], masks[64:]),
        num_classes=2,
        fractions=(1.0,),
        modes=("frozen",),
        random_init=False,
        epochs=1,
        min_steps=200,
        batch_size=16,
        learning_rate=1e-2,
        verbose=0,
    )
    assert result["results"]["ssl"]["frozen"]["1"]["pixel_accuracy"] > 0.95


def test_transfer_errors():
    encoder = SmallResNet((16, 16, 1), widths=(4, 8))
    data = _tiny_canvases(4, 0)
    with pytest.raises(ValueError, match=r"received shapes \(4, 16, 16, 1\) and \(4, 16\)"):
        segmentation_transfer(encoder, (data[0], data[1][:, 0]), data, 4)
    with pytest.raises(ValueError, match="differ in shape"):
        segmentation_transfer(encoder, data, (data[0][:, :8, :8], data[1][:, :8, :8]), 4)
    with pytest.raises(ValueError, match=r"received \('linear',\)"):
        segmentation_transfer(encoder, data, data, 4, modes=("linear",))
    with pytest.raises(ValueError, match=r"`fractions` must be a number in \(0, 1\]; received 0\."):
        segmentation_transfer(encoder, data, data, 4, fractions=(0,))
    with pytest.raises(ValueError, match="received 2"):
        segmentation_transfer(encoder, data, data, 4, encoder_learning_rate_scale=2)
    with pytest.raises(ValueError, match="`epochs` must be an integer >= 1; received 0"):
        segmentation_transfer(encoder, data, data, 4, epochs=0)


def _run(options):
    model = types.SimpleNamespace(export_encoder=SmallResNet((28, 28, 1), widths=(4, 8)))
    config = types.SimpleNamespace(
        seed=0, data=types.SimpleNamespace(dataset="fashion_mnist", data_dir=None)
    )
    return model, config, protocols.EvalSplits(train=None, test=None, options=options)


def test_protocol_is_registered_and_runs_on_canvases(tmp_path):
    assert protocols.PROTOCOLS["segmentation"] is segmentation_protocol
    assert set(SEGMENTATION_OPTIONS) <= set(protocols.DEFAULT_OPTIONS)
    options = {
        **protocols.DEFAULT_OPTIONS,
        "segmentation_train_images": 16,
        "segmentation_test_images": 4,
        "segmentation_canvas_size": 28,
        "segmentation_fractions": (1.0,),
        "segmentation_modes": ("frozen",),
        "segmentation_epochs": 1,
        "segmentation_min_steps": 1,
        "segmentation_batch_size": 16,
    }
    result = segmentation_protocol(*_run(options), str(tmp_path))
    assert result["dataset"] == "canvas" and result["num_classes"] == 11
    assert set(result["results"]) == {"ssl", "random_init"}
    assert result["results"]["ssl"]["frozen"]["1"]["train_images"] == 16
    assert os.path.exists(tmp_path / "segmentation_grid.png")
    options["segmentation_dataset"] = "voc"
    with pytest.raises(ValueError, match="Unknown segmentation_dataset 'voc'"):
        segmentation_protocol(*_run(options), str(tmp_path))
