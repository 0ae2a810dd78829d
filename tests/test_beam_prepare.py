"""Data preparation on Apache Beam (DirectRunner, 2 worker processes) builds the same datasets as the process
pool: same utterances, splits, landmarks (bit for bit), metadata and skip report, with the same threshold."""

import json
import logging
import shutil

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from artser_jax import assets
from artser_jax.data import builders, crema_d, landmark_extraction, prepare

BEAM = dict(beam_runner="DirectRunner", beam_options="--direct_num_workers=2 --direct_running_mode=multi_processing")
VIDEO_SUFFIXES = (".flv", ".avi")


def _examples(name, data_dir):
    """{split: {utterance_id: example}} of a built dataset."""
    return {split: {bytes(e["utterance_id"]).decode(): e
                    for e in tfds.data_source(f"{name}/emotion4", split=split, data_dir=str(data_dir))}
            for split in builders.SPLITS}


def _assert_same_examples(expected, actual):
    assert {split: sorted(e) for split, e in actual.items()} == {split: sorted(e) for split, e in expected.items()}
    for split, examples in expected.items():
        for uid, example in examples.items():
            other = actual[split][uid]
            assert sorted(other) == sorted(example)
            for feature, value in example.items():
                value, other_value = np.asarray(value), np.asarray(other[feature])
                assert (value.dtype, value.shape) == (other_value.dtype, other_value.shape), (uid, feature)
                assert value.tobytes() == other_value.tobytes(), (uid, feature)


def _dataset_dir(data_dir, name):
    return data_dir / name / "emotion4" / "1.0.0"


def _cache_copy_without(tiny_data_dir, manual_dir, data_dir, num_removed):
    """A copy of the session's landmark cache in `data_dir`, less the tracks of `num_removed` labelled videos
    (so the Beam build extracts those itself); {removed entry name: its original path}."""
    cache_dir = data_dir / "landmark_cache"
    shutil.copytree(tiny_data_dir / "landmark_cache", cache_dir)
    tag = landmark_extraction.settings_tag(assets.face_model_path())
    removed = {}
    for video in sorted(p for p in manual_dir.rglob("*") if p.suffix in VIDEO_SUFFIXES):
        entry = f"{assets.sha256_of(video)}-{tag}.npz"
        if (cache_dir / entry).is_file() and len(removed) < num_removed:
            (cache_dir / entry).unlink()
            removed[entry] = tiny_data_dir / "landmark_cache" / entry
    assert len(removed) == num_removed
    return cache_dir, removed


@pytest.mark.parametrize("corpus, name", [("crema_d", "crema_d_av"), ("msp_improv", "msp_improv_av")])
def test_beam_build_equals_the_process_pool_build(tiny_corpora, tiny_data_dir, tmp_path, caplog, corpus, name):
    caplog.set_level(logging.INFO)
    manual_dir = tiny_corpora / corpus
    data_dir = tmp_path / "data"
    cache_dir, removed = _cache_copy_without(tiny_data_dir, manual_dir, data_dir, num_removed=2)

    results = prepare.prepare_dataset(corpus, manual_dir, data_dir, progress=False, **BEAM)

    assert results["emotion4"] == ("built", _dataset_dir(data_dir, name))
    # DirectRunner means Beam's local FnApiRunner: not Prism, whose binary Beam would download at run time.
    assert not [record for record in caplog.records if "Prism" in record.getMessage()]
    _assert_same_examples(_examples(name, tiny_data_dir), _examples(name, data_dir))
    for entry, original in removed.items():  # extracted again inside Beam, bit for bit
        with np.load(original) as before, np.load(cache_dir / entry) as after:
            assert sorted(before) == sorted(after)
            for key in before:
                assert before[key].tobytes() == after[key].tobytes(), (entry, key)
    built, reference = _dataset_dir(data_dir, name), _dataset_dir(tiny_data_dir, name)
    assert (built / builders.SKIP_REPORT).read_text() == (reference / builders.SKIP_REPORT).read_text()
    assert json.loads((built / "metadata.json").read_text()) == json.loads((reference / "metadata.json").read_text())
    assert not list(built.glob(".beam-skips-*")), "the workers' skip lists are folded into the report"


def _break_three_train_clips(manual_dir):
    """A corrupt wav, a faceless video and an undecodable video among the train clips; their stems."""
    metadata = crema_d.load_metadata(manual_dir)
    split = metadata.split_of_actor()
    train_stems = [stem for stem in metadata.labels() if split[crema_d.parse_stem(stem).actor] == "train"]
    corrupt_wav, faceless, undecodable = train_stems[:3]
    (manual_dir / "AudioWAV" / f"{corrupt_wav}.wav").write_bytes(b"RIFF\x00\x01garbage" * 10)
    faceless_path = manual_dir / "VideoFlash" / f"{faceless}.flv"
    video = cv2.VideoCapture(str(faceless_path))
    ok, frame = video.read()
    video.release()
    assert ok
    writer = cv2.VideoWriter(str(faceless_path), cv2.VideoWriter_fourcc(*"FLV1"), 30.0,
                             (frame.shape[1], frame.shape[0]))
    for _ in range(5):
        writer.write(np.full_like(frame, 90))
    writer.release()
    (manual_dir / "VideoFlash" / f"{undecodable}.flv").write_bytes(b"FLV\x01" + bytes(range(256)) * 8)
    return corrupt_wav, faceless, undecodable


def test_beam_build_skips_bad_media_with_the_same_report_and_threshold(tiny_corpora, tiny_data_dir, tmp_path):
    manual_dir = tmp_path / "crema_d"
    shutil.copytree(tiny_corpora / "crema_d", manual_dir)
    corrupt_wav, faceless, undecodable = _break_three_train_clips(manual_dir)
    beam_dir, pool_dir = tmp_path / "beam", tmp_path / "pool"
    shutil.copytree(tiny_data_dir / "landmark_cache", beam_dir / "landmark_cache")

    # The two broken videos are new content: they are decoded (and skipped) inside the Beam workers.
    with pytest.raises(RuntimeError, match=r"3 of \d+ clips \(.*\) have unusable media, more than "
                                           r"max_skip_fraction=1.0%"):
        prepare.prepare_dataset("crema_d", manual_dir, beam_dir, max_skip_fraction=0.01, progress=False, **BEAM)
    failed_report = beam_dir / f"crema_d_av-emotion4-FAILED-{builders.SKIP_REPORT}"
    assert failed_report.is_file()
    assert not list((beam_dir / "crema_d_av" / "emotion4").glob("*/dataset_info.json"))
    assert not (beam_dir / "crema_d_av" / "emotion4" / "1.0.0").exists()

    beam_build = prepare.prepare_dataset("crema_d", manual_dir, beam_dir, max_skip_fraction=0.5, progress=False,
                                         **BEAM)
    assert beam_build["emotion4"][0] == "built"
    assert not failed_report.exists()
    # The process pool, on the cache the Beam builds left: it extracts nothing and must agree.
    shutil.copytree(beam_dir / "landmark_cache", pool_dir / "landmark_cache")
    prepare.prepare_dataset("crema_d", manual_dir, pool_dir, max_skip_fraction=0.5, progress=False)
    report = (_dataset_dir(beam_dir, "crema_d_av") / builders.SKIP_REPORT).read_text()
    assert report == (_dataset_dir(pool_dir, "crema_d_av") / builders.SKIP_REPORT).read_text()
    reasons = {row.split("\t")[0]: row.split("\t")[2] for row in report.splitlines()[1:]}
    assert set(reasons) == {corrupt_wav, faceless, undecodable}
    assert reasons[faceless].startswith("no face found in any of its 5 frames")
    assert reasons[undecodable].startswith("undecodable video")
    _assert_same_examples(_examples("crema_d_av", pool_dir), _examples("crema_d_av", beam_dir))
