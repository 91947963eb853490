import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import testing
from keras_ssl.augment import presets
from keras_ssl.datasets import EpochCounter
from keras_ssl.datasets.pipeline import make_ssl_dataset

IMAGES = np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8)
LABELS = np.arange(20)


def _epoch(dataset):
    return [{k: tf.nest.map_structure(np.asarray, v) for k, v in b.items()} for b in dataset]


def test_views_labels_shapes_and_every_example_once_per_epoch():
    augmenter = presets.simclr((8, 8, 1))
    dataset = make_ssl_dataset(IMAGES, LABELS, batch_size=6, augmenter=augmenter, seed=3)
    batches = _epoch(dataset)
    assert len(batches) == 3  # 20 // 6, the remainder is dropped
    for batch in batches:
        assert len(batch["views"]) == 2
        assert all(v.shape == (6, 8, 8, 1) and v.dtype == np.float32 for v in batch["views"])
    seen = np.concatenate([b["labels"] for b in batches])
    assert len(set(seen.tolist())) == 18 and set(seen.tolist()) <= set(range(20))


def test_seeded_pipeline_is_reproducible_and_changes_between_epochs():
    augmenter = presets.simclr((8, 8, 1))

    def build():
        return make_ssl_dataset(IMAGES, LABELS, batch_size=4, augmenter=augmenter, seed=7)

    first, again = _epoch(build()), _epoch(build())
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["labels"], b["labels"])
        np.testing.assert_array_equal(a["views"][0], b["views"][0])
    dataset = build()
    epoch_one, epoch_two = _epoch(dataset), _epoch(dataset)
    assert not np.array_equal(epoch_one[0]["views"][0], epoch_two[0]["views"][0])


def test_without_augmenter_yields_raw_batches_in_order():
    batches = _epoch(make_ssl_dataset(IMAGES, batch_size=10, shuffle=False))
    assert [sorted(b) for b in batches] == [["images"], ["images"]]
    np.testing.assert_array_equal(batches[0]["images"], IMAGES[:10, ..., None])
    assert batches[0]["images"].dtype == np.uint8


def test_accepts_a_dataset_of_pairs():
    pairs = tf.data.Dataset.from_tensor_slices((IMAGES[..., None], LABELS))
    batches = _epoch(make_ssl_dataset(pairs, batch_size=5, shuffle=False))
    np.testing.assert_array_equal(batches[1]["labels"], LABELS[5:10])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"images": IMAGES, "batch_size": 32}, "Not enough images"),
        ({"images": IMAGES, "labels": LABELS[:5], "batch_size": 4}, "one entry per image"),
        ({"images": IMAGES[:, :, 0], "batch_size": 4}, r"\[N, H, W, C\]"),
        ({"images": IMAGES.astype(str), "batch_size": 4}, "numeric"),
        ({"images": IMAGES, "batch_size": 0}, "positive multiple"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_ssl_dataset(**kwargs)


def test_batch_must_split_over_replicas():
    with pytest.raises(ValueError, match="batch_size=6 or 8"):
        make_ssl_dataset(IMAGES, batch_size=7, strategy=testing.two_replica_strategy())


def test_labels_with_a_dataset_are_refused():
    with pytest.raises(ValueError, match="labels"):
        make_ssl_dataset(tf.data.Dataset.from_tensor_slices(IMAGES), LABELS, batch_size=4)


def test_epoch_counter_makes_each_epoch_a_function_of_seed_and_epoch():
    augmenter = presets.simclr((8, 8, 1))
    counter = EpochCounter()

    def epoch(number):
        counter.on_epoch_begin(number)
        dataset = make_ssl_dataset(
            IMAGES, LABELS, batch_size=4, augmenter=augmenter, seed=5, epoch_counter=counter
        )
        return _epoch(dataset)

    first, second, first_again = epoch(0), epoch(1), epoch(0)
    seen = np.concatenate([b["labels"] for b in first])
    assert sorted(seen.tolist()) == list(range(20))  # a permutation of every example
    assert not np.array_equal(seen, np.concatenate([b["labels"] for b in second]))
    for a, b in zip(first, first_again):  # what a resumed run replays
        np.testing.assert_array_equal(a["labels"], b["labels"])
        np.testing.assert_array_equal(a["views"][1], b["views"][1])
    assert first[0]["views"][0].shape == (4, 8, 8, 1)


def test_epoch_counter_needs_seed_and_arrays():
    with pytest.raises(ValueError, match="epoch_counter"):
        make_ssl_dataset(IMAGES, batch_size=4, epoch_counter=EpochCounter())
    with pytest.raises(ValueError, match="epoch_counter"):
        make_ssl_dataset(IMAGES, batch_size=4, seed=1, repeat=True, epoch_counter=EpochCounter())
