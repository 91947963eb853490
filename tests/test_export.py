import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, export


def make_encoder(seed):
    keras.utils.set_random_seed(seed)
    return backbones.SmallResNet((8, 8, 1), widths=(4,))


def served(path, images):
    loaded = tf.saved_model.load(path)  # keep a reference while its function runs
    return loaded.serve(tf.constant(images))["embeddings"].numpy()


IMAGES = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)


def test_export_serves_normalised_embeddings_of_uint8_images(tmp_path):
    encoder = make_encoder(0)
    path = export.export_encoder(encoder, tmp_path / "enc")
    features = encoder(IMAGES.astype(np.float32) / 255.0, training=False).numpy()
    expected = features / np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(served(path, IMAGES), expected, rtol=1e-5, atol=1e-6)
    assert os.path.exists(os.path.join(path, export.METADATA_FILE))


def test_same_model_again_is_a_no_op_and_a_different_one_is_refused(tmp_path):
    first, second = make_encoder(0), make_encoder(1)
    path = export.export_encoder(first, tmp_path / "enc")
    stamp = os.path.getmtime(os.path.join(path, "saved_model.pb"))
    assert export.export_encoder(first, path) == path
    assert os.path.getmtime(os.path.join(path, "saved_model.pb")) == stamp
    with pytest.raises(ValueError, match="already holds a different model"):
        export.export_encoder(second, path)
    before = served(path, IMAGES)
    export.export_encoder(second, path, overwrite=True)
    after = served(path, IMAGES)
    assert not np.allclose(before, after)
    leftovers = [name for name in os.listdir(tmp_path) if name != "enc"]
    assert leftovers == []


def test_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="overwrite=True"):
        export.export_encoder(make_encoder(0), tmp_path / "enc")
    assert (tmp_path / "enc" / "notes.txt").read_text() == "keep me"


def test_failed_export_leaves_nothing_half_written(tmp_path, monkeypatch):
    path = export.export_encoder(make_encoder(0), tmp_path / "enc")
    before = served(path, IMAGES)

    def broken(encoder, directory, verbose):
        os.makedirs(directory)
        open(os.path.join(directory, "saved_model.pb"), "w").close()
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_write_saved_model", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_encoder(make_encoder(1), path, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["enc"]
    np.testing.assert_array_equal(served(path, IMAGES), before)


def test_rejects_non_models(tmp_path):
    with pytest.raises(ValueError, match="encoder keras.Model"):
        export.export_encoder("encoder.h5", tmp_path / "enc")


def _tree(path):
    return {p.relative_to(path).as_posix(): p.read_text() for p in path.rglob("*") if p.is_file()}


def test_move_into_place_creates_or_replaces_a_folder_or_a_file(tmp_path):
    staging = tmp_path / ".new"
    staging.mkdir()
    (staging / "a.txt").write_text("new")
    export.move_into_place(staging, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["out"] and _tree(tmp_path / "out") == {"a.txt": "new"}
    for old in ("folder", "file"):
        target = tmp_path / old
        if old == "folder":
            (target / "sub").mkdir(parents=True)
            (target / "sub" / "old.txt").write_text("old")
        else:
            target.write_text("old")
        staging.mkdir()
        (staging / "b.txt").write_text(old)
        export.move_into_place(str(staging), str(target))
        assert _tree(target) == {"b.txt": old}
    assert sorted(os.listdir(tmp_path)) == ["file", "folder", "out"]  # nothing retired is left


def test_move_into_place_puts_the_old_folder_back_when_the_move_fails(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("keep me")
    (tmp_path / ".new").mkdir()
    real_replace, calls = os.replace, []

    def replace(source, destination):
        calls.append(os.path.basename(source))
        if os.path.basename(source) == ".new":
            raise OSError("cross-device link")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="cross-device link"):
        export.move_into_place(tmp_path / ".new", tmp_path / "out")
    assert calls[0] == "out" and calls[1] == ".new"  # renamed aside, then the failed move
    assert sorted(os.listdir(tmp_path)) == [".new", "out"]
    assert _tree(tmp_path / "out") == {"keep.txt": "keep me"}
