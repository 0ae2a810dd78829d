"""Training losses (docs/method.md 2.4-2.5) as pure functions of global arrays.

All functions are written on the *global* batch: under `jax.jit` with inputs sharded over the `data`
mesh axis, XLA gathers what each device needs, so the triplet loss sees positives and negatives from
every device (tests/test_losses.py checks the sharded result equals the single-device one). Every
loss returns an exact 0 (with zero, finite gradients) when nothing is valid.
"""

import jax
import jax.numpy as jnp

_TINY = 1e-12


def cross_entropy_loss(logits, labels, mask=None, class_weights=None):
    """Mean cross-entropy over valid rows, weighted like torch's `CrossEntropyLoss(weight=...)`.

    logits (B, C), labels (B,) int, mask (B,) bool or None, class_weights (C,) or None.
    The mean is sum(w[y] * nll) / sum(w[y]) over rows where mask is True.
    """
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(log_probs, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
    weights = jnp.ones_like(nll) if class_weights is None else jnp.asarray(class_weights, jnp.float32)[labels]
    if mask is not None:
        weights = weights * mask.astype(jnp.float32)
    return jnp.sum(weights * nll) / jnp.maximum(jnp.sum(weights), _TINY)


def _pairwise_distances(embeddings):
    """Euclidean distances between unit-normalised rows; sqrt kept away from 0 so gradients stay finite."""
    unit = embeddings / jnp.maximum(jnp.linalg.norm(embeddings, axis=-1, keepdims=True), _TINY)
    squared = jnp.maximum(2.0 - 2.0 * unit @ unit.T, 0.0)
    return jnp.sqrt(squared + _TINY)


def _masked_softmax(logits, mask):
    row_max = jax.lax.stop_gradient(jnp.max(jnp.where(mask, logits, -1e30), axis=-1, keepdims=True))
    weights = jnp.where(mask, jnp.exp(jnp.where(mask, logits - row_max, 0.0)), 0.0)
    return weights / jnp.maximum(jnp.sum(weights, axis=-1, keepdims=True), _TINY)


def triplet_anchor_sets(cluster_ids, is_source, valid, common):
    """Boolean anchors (M,), positives (M, M) and negatives (M, M) of docs/method.md 2.4.

    Anchor: valid target segment whose cluster is common. Positives of a: valid source segments of the
    same cluster; negatives: valid source segments of another (assigned) cluster.
    """
    cluster_ids = cluster_ids.astype(jnp.int32)
    assigned = valid & (cluster_ids >= 0)
    in_common = jnp.asarray(common)[jnp.clip(cluster_ids, 0, common.shape[0] - 1)]
    anchors = assigned & ~is_source & in_common
    source = assigned & is_source
    same = cluster_ids[:, None] == cluster_ids[None, :]
    positives = anchors[:, None] & source[None, :] & same
    negatives = anchors[:, None] & source[None, :] & ~same
    return anchors, positives, negatives


def soft_weighted_triplet_loss(embeddings, cluster_ids, is_source, valid, common, *, lam=1.0, margin=0.2,
                               mining="soft", form="softplus"):
    """Triplet loss over flattened global segments (docs/method.md 2.4).

    embeddings (M, D); cluster_ids (M,) int, -1 = no cluster; is_source (M,) bool; valid (M,) bool;
    common (K,) bool. Embeddings are unit-normalised here.

    mining="soft": D+ = softmax_P(d) . d over positives, D- = softmax_N(-d) . d over negatives;
    mining="hard": D+ = hardest (farthest) positive, D- = hardest (closest) negative.
    form="softplus": log(1 + exp(lam * (D+ - D-))); form="hinge": max(0, D+ - D- + margin).
    Mean over anchors with at least one positive and one negative; 0 when there is none.
    """
    if mining not in ("soft", "hard"):
        raise ValueError(f"mining must be 'soft' or 'hard', got {mining!r}")
    if form not in ("softplus", "hinge"):
        raise ValueError(f"form must be 'softplus' or 'hinge', got {form!r}")
    distances = _pairwise_distances(embeddings.astype(jnp.float32))
    anchors, positives, negatives = triplet_anchor_sets(cluster_ids, is_source, valid, common)
    has_both = anchors & jnp.any(positives, axis=-1) & jnp.any(negatives, axis=-1)
    if mining == "soft":
        d_pos = jnp.sum(_masked_softmax(distances, positives) * distances, axis=-1)
        d_neg = jnp.sum(_masked_softmax(-distances, negatives) * distances, axis=-1)
    else:
        d_pos = jnp.max(jnp.where(positives, distances, 0.0), axis=-1)
        d_neg = jnp.min(jnp.where(negatives, distances, 4.0), axis=-1)  # 4 > any unit-sphere distance
    gap = d_pos - d_neg
    per_anchor = jax.nn.softplus(lam * gap) if form == "softplus" else jnp.maximum(gap + margin, 0.0)
    count = jnp.sum(has_both.astype(jnp.float32))
    return jnp.sum(jnp.where(has_both, per_anchor, 0.0)) / jnp.maximum(count, 1.0)


def _masked_covariance(features, mask):
    weights = mask.astype(jnp.float32)[:, None]
    count = jnp.sum(weights)
    mean = jnp.sum(features * weights, axis=0) / jnp.maximum(count, 1.0)
    centred = (features - mean) * weights
    return centred.T @ centred / jnp.maximum(count - 1.0, 1.0), count


def coral_loss(source, source_mask, target, target_mask):
    """Deep CORAL: (1 / (4 d^2)) ||C_s - C_t||_F^2 between the covariances of valid rows.

    source (N, D), target (M, D), masks (N,), (M,) bool. 0 when either side has fewer than 2 valid rows.
    """
    source, target = source.astype(jnp.float32), target.astype(jnp.float32)
    d = source.shape[-1]
    cov_s, n_s = _masked_covariance(source, source_mask)
    cov_t, n_t = _masked_covariance(target, target_mask)
    loss = jnp.sum(jnp.square(cov_s - cov_t)) / (4.0 * d * d)
    return jnp.where((n_s >= 2) & (n_t >= 2), loss, 0.0)


def layer_coral_loss(hidden_states, frame_mask, is_source, layers):
    """Mean CORAL over the chosen encoder layers, every valid frame of a corpus being one sample.

    hidden_states: sequence of (B, F, D); frame_mask (B, F) bool; is_source (B,) bool; layers: indices.
    """
    if not layers:
        raise ValueError("layer_coral_loss needs at least one layer index")
    source_rows = (frame_mask & is_source[:, None]).reshape(-1)
    target_rows = (frame_mask & ~is_source[:, None]).reshape(-1)
    losses = []
    for layer in layers:
        flat = hidden_states[layer].reshape(-1, hidden_states[layer].shape[-1])
        losses.append(coral_loss(flat, source_rows, flat, target_rows))
    return jnp.mean(jnp.stack(losses))
