import numpy as np
import pytest

from keras_ssl import testing
from keras_ssl.losses.masked_patches import (
    MaskedPatchLoss,
    check_norm_pix,
    denormalize_patches,
    masked_patch_loss,
    normalize_patches,
    patch_moments,
)


def _reference_loss(target_patches, predicted_patches, mask, norm_pix=True, epsilon=1e-6):
    """MAE Sec. 3: MSE per masked patch against targets normalised by the patch's mean and
    (unbiased) variance, averaged over the masked patches of each image."""
    target = np.asarray(target_patches, np.float64)
    if norm_pix:
        mean = target.mean(-1, keepdims=True)
        variance = target.var(-1, ddof=1, keepdims=True)
        target = (target - mean) / np.sqrt(variance + epsilon)
    errors = ((np.asarray(predicted_patches) - target) ** 2).mean(-1)
    return (errors * mask).sum(-1) / mask.sum(-1)


def test_masked_patch_loss_hand_value():
    target = np.array([[[1.0, 3.0], [5.0, 5.0]]], np.float32)
    predicted = np.zeros((1, 2, 2), np.float32)
    # Patch 0 masked: normalised target (-1, 1)/sqrt(2 + 1e-6) -> MSE 1 / (2 + 1e-6).
    testing.run_loss_test(
        masked_patch_loss,
        {"target_patches": target, "predicted_patches": predicted, "mask": np.array([[1.0, 0.0]])},
        expected=1 / (2 + 1e-6),
    )
    # Raw pixels, patch 1 masked: (25 + 25) / 2.
    testing.run_loss_test(
        masked_patch_loss,
        {
            "target_patches": target,
            "predicted_patches": predicted,
            "mask": np.array([[0.0, 1.0]]),
            "norm_pix": False,
        },
        expected=25.0,
    )


def test_masked_patch_loss_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    mask = np.zeros((4, 10), np.float32)
    for row in mask:
        row[rng.permutation(10)[:7]] = 1.0
    inputs = {
        "target_patches": rng.random((4, 10, 12)).astype(np.float32),
        "predicted_patches": rng.normal(size=(4, 10, 12)).astype(np.float32),
        "mask": mask,
    }
    testing.run_loss_test(masked_patch_loss, inputs, reference_fn=_reference_loss)
    testing.run_loss_test(
        masked_patch_loss, {**inputs, "norm_pix": False}, reference_fn=_reference_loss
    )
    full = {**inputs, "mask": np.ones((4, 10), np.float32)}
    testing.run_loss_test(
        masked_patch_loss, full, reference_fn=_reference_loss, loss_object=MaskedPatchLoss()
    )


def test_visible_patches_carry_no_loss():
    rng = np.random.default_rng(1)
    target = rng.random((2, 6, 4)).astype(np.float32)
    predicted = rng.random((2, 6, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0, 0], [0, 1, 0, 1, 0, 1]], np.float32)
    changed = predicted.copy()
    changed[mask == 0] += 100.0
    np.testing.assert_array_equal(
        masked_patch_loss(target, changed, mask).numpy(),
        masked_patch_loss(target, predicted, mask).numpy(),
    )
    normalised = normalize_patches(target).numpy()
    np.testing.assert_allclose(normalised.mean(-1), 0.0, atol=1e-6, rtol=0)
    np.testing.assert_allclose(normalised.var(-1, ddof=1), 1.0, atol=1e-4, rtol=1e-4)


def test_loss_wrapper_takes_the_mask():
    rng = np.random.default_rng(2)
    target, predicted = rng.random((3, 5, 4)), rng.random((3, 5, 4))
    mask = (rng.random((3, 5)) > 0.5).astype(np.float32)
    mask[:, 0] = 1.0
    loss = MaskedPatchLoss(norm_pix=False)
    value = loss({"patches": target, "mask": mask}, predicted)
    expected = _reference_loss(target, predicted, mask, norm_pix=False).mean()
    np.testing.assert_allclose(float(value), expected, rtol=1e-5, atol=1e-6)
    assert MaskedPatchLoss.from_config(loss.get_config()).get_config() == loss.get_config()


def test_patch_moments_and_denormalize_invert_the_normalisation():
    patches = np.random.default_rng(3).random((2, 5, 8)).astype(np.float32)
    mean, variance = patch_moments(patches)
    assert mean.shape == (2, 5, 1) and variance.shape == (2, 5, 1)
    np.testing.assert_allclose(mean[..., 0], patches.mean(-1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(variance[..., 0], patches.var(-1, ddof=1), rtol=1e-5, atol=1e-7)
    back = denormalize_patches(normalize_patches(patches), patches).numpy()
    np.testing.assert_allclose(back, patches, rtol=1e-5, atol=1e-6)
    by_hand = np.ones((2, 5, 8)) * np.sqrt(variance + 1e-6) + mean
    np.testing.assert_allclose(denormalize_patches(np.ones((2, 5, 8)), patches), by_hand, atol=1e-6)
    with pytest.raises(ValueError, match=r"at least 2 values per patch.*\(2, 5, 1\)"):
        patch_moments(np.ones((2, 5, 1), np.float32))


def test_norm_pix_must_be_a_bool_with_patches_to_normalise():
    assert check_norm_pix(True, "norm_pix", (2, 2, 1)) is True
    assert check_norm_pix(False, "norm_pix", (1, 1, 1)) is False
    with pytest.raises(ValueError, match="`norm_pix` must be True or False; received 1"):
        MaskedPatchLoss(norm_pix=1)
    with pytest.raises(ValueError, match=r"`norm_pix_loss=True` normalises.*1x1 patches of 1"):
        check_norm_pix(True, "norm_pix_loss", (1, 1, 1))
