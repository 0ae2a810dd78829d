"""The paired bootstrap delta-UAR interval and the anchoring diagnostics against hand-computed cases."""

import itertools

import numpy as np
import pytest

from artser_jax import diagnostics
from artser_jax import statistics


def test_delta_uar_point_estimate_by_hand():
    labels = np.array([0, 0, 1])
    # Method: class 0 recall 1/2, class 1 recall 1 -> UAR 75; baseline: 0 and 1 -> UAR 50.
    result = statistics.paired_bootstrap_delta_uar(labels, [[0, 1, 1]], [[1, 1, 1]], resamples=200)
    assert result.delta == pytest.approx(25.0)


def test_delta_uar_interval_matches_the_exhaustive_bootstrap():
    labels = np.array([0, 0, 1])
    method, baseline = np.array([[0, 1, 1]]), np.array([[1, 1, 1]])
    # Every one of the 27 equally likely utterance draws, by hand: the draw's class-0 recall of the
    # method is (# drawn copies of utterance 0) / (# drawn class-0 utterances); the baseline's is 0;
    # class 1 is right in both arms, so it cancels (or is absent); delta = UAR difference.
    exhaustive = []
    for draw in itertools.product(range(3), repeat=3):
        zeros = sum(1 for i in draw if i in (0, 1))
        present = (zeros > 0) + (2 in draw)
        recall0 = sum(1 for i in draw if i == 0) / zeros if zeros else 0.0
        exhaustive.append(100.0 * recall0 / present)
    result = statistics.paired_bootstrap_delta_uar(labels, method, baseline, resamples=40000, seed=1)
    low, high = np.percentile(exhaustive, [2.5, 97.5], method="inverted_cdf")
    assert result.low == pytest.approx(low, abs=1e-9) and result.high == pytest.approx(high, abs=1e-9)
    assert (result.low, result.high) == (0.0, 100.0)


def test_seeds_are_resampled_and_paired():
    labels = np.array([0, 1, 0, 1])
    right, wrong = labels.copy(), 1 - labels
    # Seed 0: method right, baseline wrong (+100); seed 1: method wrong, baseline right (-100).
    result = statistics.paired_bootstrap_delta_uar(labels, [right, wrong], [wrong, right], resamples=4000)
    assert result.delta == pytest.approx(0.0)
    assert result.low == pytest.approx(-100.0) and result.high == pytest.approx(100.0)
    same = statistics.paired_bootstrap_delta_uar(labels, [right, wrong], [right, wrong], resamples=500)
    assert (same.delta, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="seeds, 4 utterances"):
        statistics.paired_bootstrap_delta_uar(labels, [right], [right, wrong])


# Five segments on a plane (unit vectors): source s0 (cluster 0) at 0 deg, s1 (cluster 1) at 90 deg,
# s2 (cluster 0) at 180 deg; target t0 (cluster 0) at 10 deg, t1 (cluster 1) at 0 deg.
_ANGLES = np.deg2rad([0.0, 90.0, 180.0, 10.0, 0.0])
_EMBEDDINGS = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], 1)
_CLUSTERS = np.array([0, 1, 0, 0, 1])
_IS_SOURCE = np.array([True, True, True, False, False])
_VALID = np.ones(5, bool)
_COMMON = np.array([True, True])


def _chord(degrees):
    return 2 * np.sin(np.deg2rad(degrees) / 2)


def test_anchor_distance_gap_by_hand():
    # t0: positives s0 (10 deg), s2 (170 deg); negative s1 (80 deg). t1: positive s1 (90), negatives s0 (0), s2 (180).
    gap_t0 = (_chord(10) + _chord(170)) / 2 - _chord(80)
    gap_t1 = _chord(90) - (_chord(0) + _chord(180)) / 2
    value = diagnostics.anchor_distance_gap(_EMBEDDINGS, _CLUSTERS, _IS_SOURCE, _VALID, _COMMON)
    assert value == pytest.approx((gap_t0 + gap_t1) / 2)
    # Only cluster 0 anchors: t1 is no anchor.
    only_zero = diagnostics.anchor_distance_gap(_EMBEDDINGS, _CLUSTERS, _IS_SOURCE, _VALID, np.array([True, False]))
    assert only_zero == pytest.approx(gap_t0)


def test_nearest_source_share_by_hand():
    # t0's nearest source is s0 (its cluster); t1's nearest is s0 (cluster 0, not its own): 1 of 2.
    value = diagnostics.nearest_source_share(_EMBEDDINGS, _CLUSTERS, _IS_SOURCE, _VALID, _COMMON)
    assert value == pytest.approx(0.5)
    invalid = _VALID.copy()
    invalid[0] = False  # without s0: t0 -> s1 (80 deg, wrong), t1 -> s1 (90 deg, right)
    assert diagnostics.nearest_source_share(_EMBEDDINGS, _CLUSTERS, _IS_SOURCE, invalid, _COMMON) == pytest.approx(0.5)
    no_anchor = np.array([True, True, True, False, False])
    assert np.isnan(diagnostics.nearest_source_share(_EMBEDDINGS, _CLUSTERS, _IS_SOURCE, no_anchor, _COMMON))


def test_gradient_shares_by_hand():
    assert diagnostics.gradient_shares({"loss_er": 6.0, "agcc": 2.0}) == {"loss_er": 0.75, "agcc": 0.25}
    assert diagnostics.gradient_shares({"loss_er": 0.0}) == {"loss_er": 0.0}
