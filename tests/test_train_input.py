"""artser_jax.input_pipeline on in-memory synthetic examples: shapes, sharding, eval padding, resume."""

import grain
import numpy as np
import pytest

from artser_jax import input_pipeline

SAMPLE_RATE = 16000


def synthetic_examples(count, seed=0, corpus="crema_d"):
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(count):
        seconds = rng.uniform(0.5, 2.0)
        num_phones = int(rng.integers(3, 9))
        bounds = np.sort(rng.uniform(0, seconds, num_phones + 1)).astype(np.float32)
        examples.append({
            "utterance_id": f"{corpus}_{i:03d}".encode(),
            "speaker": b"s1", "corpus": corpus.encode(),
            "emotion": np.int64(i % 4),
            "audio": (rng.normal(size=int(seconds * SAMPLE_RATE)) * 3000).astype(np.int16),
            "frame_rate": np.float32(30.0),
            "phone_starts": bounds[:-1], "phone_ends": bounds[1:],
            "phone_labels": " ".join(rng.choice(["aa", "iy", "m", "sil"], num_phones)).encode(),
        })
    return examples


class FakeClusters:
    """A stand-in cluster model: segment k of every utterance gets cluster k % 3."""

    def assign_example(self, example, segments):
        del example
        return np.where(segments["seg_mask"], np.arange(len(segments["seg_mask"])) % 3, -1).astype(np.int32)


def prepare(with_label=True, max_seconds=1.0):
    return input_pipeline.PrepareExample(
        max_samples=int(max_seconds * SAMPLE_RATE), sample_rate=SAMPLE_RATE, segment_method="phones",
        max_segments=6, segment_options={"min_video_frames": 2}, cluster_model=FakeClusters(),
        with_label=with_label)


def test_prepare_gives_static_shapes_and_masks_cropped_segments():
    example = synthetic_examples(1)[0]
    example["audio"] = np.full(2 * SAMPLE_RATE, 1000, np.int16)
    example["phone_starts"] = np.array([0.1, 0.5, 1.2], np.float32)
    example["phone_ends"] = np.array([0.5, 1.1, 1.6], np.float32)
    example["phone_labels"] = b"aa m iy"
    features = prepare(max_seconds=1.0).map(example)
    assert features["audio"].shape == (SAMPLE_RATE,) and features["audio_mask"].all()
    np.testing.assert_allclose(features["audio"][:5], 1000 / 32768)
    # The third phone starts after the 1 s crop: masked, no cluster; the second is clipped at 1 s.
    np.testing.assert_array_equal(features["seg_mask"], [True, True, False, False, False, False])
    np.testing.assert_array_equal(features["seg_cluster"], [0, 1, -1, -1, -1, -1])
    assert features["seg_end"][1] == pytest.approx(1.0)
    assert features["label"] == example["emotion"]
    assert input_pipeline.decode_utterance_ids(features["utterance_id"][None]) == ["crema_d_000"]
    assert "label" not in prepare(with_label=False).map(example)


def _batches(iterator, count):
    return [next(iterator) for _ in range(count)]


def test_process_shards_together_form_the_single_process_batches():
    source, target = synthetic_examples(13), synthetic_examples(11, seed=1, corpus="msp_improv")
    kwargs = dict(source_batch_size=4, target_batch_size=4, seed=7, prefetch_buffer=0)

    def run(index, count):
        options = grain.sharding.ShardOptions(shard_index=index, shard_count=count)
        return _batches(input_pipeline.training_iterator(source, target, prepare(), prepare(False),
                                                         shard_options=options, **kwargs), 5)

    single = run(0, 1)
    halves = [run(0, 2), run(1, 2)]
    for step in range(5):
        assert "label" not in single[step]["target"]
        for stream in ("source", "target"):
            # Row for row: process 0's rows, then process 1's, are the single-process batch.
            ids_single = input_pipeline.decode_utterance_ids(single[step][stream]["utterance_id"])
            ids_split = sum((input_pipeline.decode_utterance_ids(h[step][stream]["utterance_id"])
                             for h in halves), [])
            assert ids_single == ids_split
        assert single[step]["source"]["audio"].shape == (4, SAMPLE_RATE)
        assert halves[0][step]["source"]["seg_cluster"].shape == (2, 6)


class CountingPrepare(input_pipeline.PrepareExample):
    """PrepareExample that counts its calls per utterance."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = {}

    def map(self, element):
        self.calls[element["utterance_id"]] = self.calls.get(element["utterance_id"], 0) + 1
        return super().map(element)


def test_kept_prepared_examples_give_the_same_batches_and_are_prepared_once():
    source, target = synthetic_examples(7), synthetic_examples(5, seed=1, corpus="msp_improv")
    options = grain.sharding.ShardOptions(0, 1)
    kwargs = dict(max_samples=SAMPLE_RATE, sample_rate=SAMPLE_RATE, segment_method="phones", max_segments=6,
                  segment_options={"min_video_frames": 2}, cluster_model=FakeClusters())

    def run(keep):
        prepares = CountingPrepare(**kwargs), CountingPrepare(**kwargs, with_label=False)
        iterator = input_pipeline.training_iterator(source, target, *prepares, source_batch_size=2,
                                                    target_batch_size=2, seed=5, shard_options=options,
                                                    prefetch_buffer=2, keep_prepared=keep)
        return _batches(iterator, 12), prepares  # 24 rows: over 3 epochs of each split

    fresh, fresh_prepares = run(False)
    kept, kept_prepares = run(True)
    for want, got in zip(fresh, kept):
        for stream in ("source", "target"):
            assert want[stream].keys() == got[stream].keys()
            for key in want[stream]:
                np.testing.assert_array_equal(want[stream][key], got[stream][key])
    for fresh_prepare, kept_prepare, split in zip(fresh_prepares, kept_prepares, (source, target)):
        assert min(fresh_prepare.calls.values()) >= 3 and len(kept_prepare.calls) == len(split)
        # Kept: prepared once each (two read-ahead threads may both miss one row at an epoch boundary).
        assert max(kept_prepare.calls.values()) <= 2 < min(fresh_prepare.calls.values())


def test_iterator_state_resumes_the_same_batches():
    source, target = synthetic_examples(9), synthetic_examples(7, seed=1)
    options = grain.sharding.ShardOptions(0, 1)

    def make():
        return input_pipeline.training_iterator(source, target, prepare(), prepare(False), source_batch_size=2,
                                                target_batch_size=2, seed=3, shard_options=options,
                                                prefetch_buffer=2)

    iterator = make()
    _batches(iterator, 3)
    state = iterator.get_state()
    expected = _batches(iterator, 4)
    resumed = make()
    resumed.set_state(state)
    for want, got in zip(expected, _batches(resumed, 4)):
        np.testing.assert_array_equal(want["source"]["utterance_id"], got["source"]["utterance_id"])
        np.testing.assert_array_equal(want["target"]["audio"], got["target"]["audio"])


def test_target_training_stream_refuses_labels():
    options = grain.sharding.ShardOptions(0, 1)
    with pytest.raises(ValueError, match="must not carry labels"):
        input_pipeline.training_iterator([], [], prepare(), prepare(True), source_batch_size=2,
                                         target_batch_size=2, seed=0, shard_options=options)


@pytest.mark.parametrize("shard_count", [1, 2])
def test_eval_counts_every_utterance_once(shard_count):
    examples = synthetic_examples(11)
    seen = []
    for index in range(shard_count):
        dataset, count = input_pipeline.eval_dataset(examples, prepare(), 4,
                                                     grain.sharding.ShardOptions(index, shard_count))
        assert count == 11
        for batch in dataset:
            assert batch["audio"].shape[0] == 4 // shard_count
            ids = input_pipeline.decode_utterance_ids(batch["utterance_id"])
            seen += [i for i, valid in zip(ids, batch["eval_mask"]) if valid]
    assert sorted(seen) == [f"crema_d_{i:03d}" for i in range(11)]
