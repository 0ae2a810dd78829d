"""Gesture fixtures: synthetic talking-mouth landmark tracks with planted mouth shapes, and a gesture
model fitted on the tiny demo datasets.

The synthetic tracks use the contract's `(T, 45, 3)` pixel layout: 40 lip points in
`landmarks.LIP_INDICES` order, then the eye corners and the nose tip, drawn from a parametric mouth
(width, inner aperture, corner height, lip thickness) in a face frame whose inter-ocular distance is 1,
then scaled, rotated and moved per speaker, with per-point noise.
"""

import numpy as np
import pytest

from artser_jax import landmarks as lm
from artser_jax.gestures import cluster_space
from artser_jax.gestures import fitting
from tests.fixture_corpora import exclusive_build
from tests.fixture_datasets import session_shared_dir

FRAME_RATE = 30.0
TINY_SOURCE = "crema_d_av/emotion4"
TINY_TARGET = "msp_improv_av/emotion4"
# Planted shapes: (mouth width, inner aperture, corner height), in inter-ocular distances, and the
# phone label written for them.
SHAPES = {
        "closed": ((0.90, 0.00, 0.00), "m"),
        "open": ((0.85, 0.45, 0.00), "aa"),
        "rounded": ((0.55, 0.22, 0.00), "uw"),
        "spread": ((1.15, 0.08, 0.06), "iy"),
}
SHAPE_NAMES = tuple(SHAPES)


def _arc(half_width, height, count, drop_ends=False):
    u = np.linspace(-half_width, half_width, count + (2 if drop_ends else 0))
    if drop_ends:
        u = u[1:-1]
    return u, height * np.sqrt(np.clip(1.0 - (u / half_width) ** 2, 0.0, 1.0))


def mouth_frame(width, aperture, corner_height, lip_thickness=0.1):
    """One frame `(45, 2)` in face units (inter-ocular distance 1, image y pointing down)."""
    half = width / 2.0
    outer = aperture / 2.0 + lip_thickness
    parts = []
    u, v = _arc(half, outer, len(lm.OUTER_LOWER_LIP))
    parts.append(np.stack([u, v], -1))
    u, v = _arc(half, outer, len(lm.OUTER_UPPER_LIP), drop_ends=True)
    parts.append(np.stack([u, -v], -1))
    u, v = _arc(0.9 * half, aperture / 2.0, len(lm.INNER_LOWER_LIP))
    parts.append(np.stack([u, v], -1))
    u, v = _arc(0.9 * half, aperture / 2.0, len(lm.INNER_UPPER_LIP), drop_ends=True)
    parts.append(np.stack([u, -v], -1))
    lips = np.concatenate(parts)
    # Corners (ends of the lower-lip arcs) move up by the corner height; y points down.
    for contour_start, count in ((0, len(lm.OUTER_LOWER_LIP)),
                                 (len(lm.OUTER_LOWER_LIP) + len(lm.OUTER_UPPER_LIP),
                                  len(lm.INNER_LOWER_LIP))):
        lips[contour_start, 1] -= corner_height
        lips[contour_start + count - 1, 1] -= corner_height
    lips[:, 1] += 0.3  # the mouth sits below the eyes
    # Right eye outer/inner corner, left eye inner/outer corner (image left to right), nose tip.
    face = np.array([[-0.75, -1.1], [-0.25, -1.1], [0.25, -1.1], [0.75, -1.1], [0.0, -0.5]])
    return np.concatenate([lips, face])


def random_speaker(rng):
    """Anatomy and camera of one speaker: what per-speaker normalisation has to remove."""
    return {
            "scale": rng.uniform(50.0, 120.0),  # pixels per inter-ocular distance
            "angle": rng.uniform(-0.2, 0.2),
            "offset": rng.uniform(100.0, 300.0, size=2),
            "width": rng.uniform(0.85, 1.15),
            "aperture": rng.uniform(0.8, 1.2),
            "thickness": rng.uniform(0.07, 0.13),
    }


def planted_example(rng, speaker, shape_sequence, corpus="corpus_a", speaker_name="s0",
                    utterance_id="u0", noise=0.01, invalid_segments=()):
    """A TFDS-like example whose phones are planted mouth shapes (one segment per shape, 3-8 frames).

    Frames of the segments listed in `invalid_segments` have no face. Returns the example and the
    planted shape index per segment.
    """
    lengths = rng.integers(3, 9, size=len(shape_sequence))
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    frames = []
    for name, length in zip(shape_sequence, lengths):
        (width, aperture, corner), _ = SHAPES[name]
        for _ in range(length):
            frame = mouth_frame(width * speaker["width"] * rng.normal(1.0, 0.03),
                                max(aperture * speaker["aperture"] + rng.normal(0.0, 0.015), 0.0),
                                corner + rng.normal(0.0, 0.01), speaker["thickness"])
            frames.append(frame + rng.normal(0.0, noise, size=frame.shape))
    points = np.stack(frames)
    cos, sin = np.cos(speaker["angle"]), np.sin(speaker["angle"])
    rotated = points @ np.array([[cos, sin], [-sin, cos]])
    pixels = rotated * speaker["scale"] + speaker["offset"]
    depth = rng.normal(0.0, 1.0, size=pixels.shape[:2] + (1,))
    valid = np.ones(len(pixels), bool)
    for segment in invalid_segments:
        valid[bounds[segment]:bounds[segment + 1]] = False
    times = (np.arange(len(pixels)) / FRAME_RATE).astype(np.float32)
    example = {
            "utterance_id": utterance_id, "speaker": speaker_name, "corpus": corpus, "emotion": 0,
            "landmarks": np.concatenate([pixels, depth], -1).astype(np.float32),
            "landmark_valid": valid, "frame_rate": np.float32(FRAME_RATE), "frame_times": times,
            "phone_starts": (bounds[:-1] / FRAME_RATE).astype(np.float32),
            "phone_ends": (bounds[1:] / FRAME_RATE).astype(np.float32),
            "phone_labels": " ".join(SHAPES[name][1] for name in shape_sequence),
    }
    return example, np.array([SHAPE_NAMES.index(name) for name in shape_sequence])


def planted_corpus(rng, corpus, num_speakers, utterances_per_speaker, segments_per_utterance=12,
                   noise=0.01):
    """Examples of `num_speakers` random speakers, each utterance a random sequence of shapes."""
    examples, truths = [], []
    for s in range(num_speakers):
        speaker = random_speaker(rng)
        for u in range(utterances_per_speaker):
            sequence = rng.choice(SHAPE_NAMES, size=segments_per_utterance)
            example, truth = planted_example(rng, speaker, sequence, corpus, f"{corpus}_s{s}",
                                             f"{corpus}_s{s}_u{u}", noise)
            examples.append(example)
            truths.append(truth)
    return examples, truths


@pytest.fixture(scope="session")
def tiny_gesture_model(tiny_data_dir, tmp_path_factory):
    """Path of a `GestureModel` fitted on the tiny `crema_d_av` and `msp_improv_av` training splits.

    One path for every xdist worker: the shared reference run's config names it, and a resumed copy of
    that run must see the same path to leave its config.json as it was.
    """
    folder = session_shared_dir(tmp_path_factory, "tiny_gestures")
    path = folder / "tiny_gestures.npz"
    with exclusive_build(folder):
        if not path.exists():
            config = cluster_space.GestureConfig(num_clusters=4, n_init=2, common_min_count=3,
                                                 min_speaker_segments=5)
            model = fitting.fit_gesture_model(TINY_SOURCE, TINY_TARGET, tiny_data_dir, config)
            folder.mkdir(parents=True, exist_ok=True)
            model.save(path)
    return path
