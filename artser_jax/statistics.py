"""Paired bootstrap confidence intervals for a difference in UAR between two arms (issue 11).

Both arms are evaluated on the same test utterances with the same training seeds. One bootstrap replicate
draws the test utterances with replacement (the same draw for both arms: the pairing) and the seeds with
replacement (the same seed indices for both arms), and computes

    delta = mean over drawn seeds of UAR(method) - mean over drawn seeds of UAR(baseline)

on the drawn utterances. The interval is the percentile interval of the replicates. UAR is the mean over
the classes present in a draw of each class's recall (in %), so a draw that misses a class averages over
the others.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class DeltaInterval:
    """delta-UAR (percentage points) on the full test set and its bootstrap percentile interval."""
    delta: float
    low: float
    high: float
    confidence: float
    resamples: int

    def as_dict(self):
        return dataclasses.asdict(self)


def uar_of_draws(correct, labels, weights, num_classes):
    """UAR (%) of each seed under each utterance weighting.

    correct (S, N) bool: seed s predicted utterance n right; labels (N,) int; weights (B, N): how often each
    utterance is drawn. Returns (B, S).
    """
    one_hot = np.eye(num_classes)[labels]                          # (N, K)
    per_class = weights @ one_hot                                   # (B, K) utterances drawn per class
    hits = np.einsum("bn,sn,nk->bsk", weights, correct.astype(np.float64), one_hot)
    present = per_class > 0
    recall = np.where(present[:, None, :], hits / np.maximum(per_class, 1)[:, None, :], 0.0)
    return 100.0 * recall.sum(-1) / present.sum(-1, keepdims=True)


def paired_bootstrap_delta_uar(labels, method_predictions, baseline_predictions, num_classes=None,
                               resamples=2000, confidence=0.95, seed=0):
    """delta-UAR (method - baseline) and its paired bootstrap interval over utterances and seeds.

    labels (N,) int; method_predictions and baseline_predictions (S, N) int, row s being training seed s of
    each arm (the same seeds in the same order).
    """
    labels = np.asarray(labels)
    method_predictions = np.atleast_2d(np.asarray(method_predictions))
    baseline_predictions = np.atleast_2d(np.asarray(baseline_predictions))
    if method_predictions.shape != baseline_predictions.shape or method_predictions.shape[1] != len(labels):
        raise ValueError(f"predictions must both be (seeds, {len(labels)} utterances); got "
                         f"{method_predictions.shape} and {baseline_predictions.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    num_classes = int(num_classes or labels.max() + 1)
    num_seeds, count = method_predictions.shape
    method_correct = method_predictions == labels
    baseline_correct = baseline_predictions == labels
    full = np.ones((1, count))
    delta = float(uar_of_draws(method_correct, labels, full, num_classes).mean()
                  - uar_of_draws(baseline_correct, labels, full, num_classes).mean())
    rng = np.random.default_rng(seed)
    replicates = np.empty(resamples)
    chunk = 250
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = rng.integers(0, count, (size, count))
        weights = np.stack([np.bincount(row, minlength=count) for row in draws]).astype(np.float64)
        seed_draws = rng.integers(0, num_seeds, (size, num_seeds))
        method_uar = uar_of_draws(method_correct, labels, weights, num_classes)      # (size, S)
        baseline_uar = uar_of_draws(baseline_correct, labels, weights, num_classes)
        rows = np.arange(size)[:, None]
        replicates[start:start + size] = (method_uar[rows, seed_draws].mean(1)
                                          - baseline_uar[rows, seed_draws].mean(1))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return DeltaInterval(delta=delta, low=float(low), high=float(high), confidence=confidence,
                         resamples=resamples)
