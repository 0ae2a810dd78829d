"""Losses: hand-computed tiny cases, edge cases, jit == eager, finite gradients, sharded == single device."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artser_jax import losses, sharding
from artser_jax.models.logmel import LogMelConfig, LogMelEncoder
from artser_jax.models.segment_model import SegmentEmotionModel


def _on_circle(degrees):
    radians = np.deg2rad(np.asarray(degrees, np.float64))
    return jnp.asarray(np.stack([np.cos(radians), np.sin(radians)], -1), jnp.float32)


# Anchor (target, cluster 0) at 0 deg; source positives at 60 and 90 deg (cluster 0); source negatives at
# 180 deg (cluster 1) and 120 deg (cluster 2). Chord lengths: 2 sin(angle / 2).
TINY = dict(embeddings=_on_circle([0, 60, 90, 180, 120]),
            cluster_ids=jnp.array([0, 0, 0, 1, 2]),
            is_source=jnp.array([False, True, True, True, True]),
            valid=jnp.ones(5, bool),
            common=jnp.array([True, True, True]))
D_POS = (1.0, math.sqrt(2.0))
D_NEG = (2.0, math.sqrt(3.0))


def _softmax_mean(values, logits):
    weights = [math.exp(v) for v in logits]
    return sum(w * v for w, v in zip(weights, values)) / sum(weights)


def test_soft_triplet_matches_hand_computation():
    d_plus = _softmax_mean(D_POS, D_POS)                       # harder (farther) positives weigh more
    d_minus = _softmax_mean(D_NEG, [-d for d in D_NEG])        # harder (closer) negatives weigh more
    for lam in (1.0, 2.5):
        expected = math.log1p(math.exp(lam * (d_plus - d_minus)))
        got = losses.soft_weighted_triplet_loss(**TINY, lam=lam)
        assert float(got) == pytest.approx(expected, abs=1e-5)
    hinge = losses.soft_weighted_triplet_loss(**TINY, form="hinge", margin=0.5)
    assert float(hinge) == pytest.approx(max(0.0, d_plus - d_minus + 0.5), abs=1e-5)


def test_hard_mining_uses_farthest_positive_and_closest_negative():
    got = losses.soft_weighted_triplet_loss(**TINY, mining="hard")
    assert float(got) == pytest.approx(math.log1p(math.exp(math.sqrt(2.0) - math.sqrt(3.0))), abs=1e-5)
    hinge = losses.soft_weighted_triplet_loss(**TINY, mining="hard", form="hinge", margin=0.1)
    assert float(hinge) == pytest.approx(0.0, abs=1e-6)  # sqrt2 - sqrt3 + 0.1 < 0


def test_anchor_rules_and_no_anchor_gives_zero():
    base = dict(TINY)
    # Cluster 0 not common: no anchor -> exactly 0, with finite (zero) gradients.
    no_common = dict(base, common=jnp.array([False, True, True]))
    assert float(losses.soft_weighted_triplet_loss(**no_common)) == 0.0
    grad = jax.grad(lambda e: losses.soft_weighted_triplet_loss(**dict(no_common, embeddings=e)))(base["embeddings"])
    assert np.all(np.asarray(grad) == 0.0)
    # Everything source: no anchor.
    assert float(losses.soft_weighted_triplet_loss(**dict(base, is_source=jnp.ones(5, bool)))) == 0.0
    # Anchor without negatives (negatives invalid) does not count.
    no_negatives = dict(base, valid=jnp.array([True, True, True, False, False]))
    assert float(losses.soft_weighted_triplet_loss(**no_negatives)) == 0.0
    # Unassigned anchor (-1) does not count; an extra invalid row changes nothing.
    assert float(losses.soft_weighted_triplet_loss(**dict(base, cluster_ids=jnp.array([-1, 0, 0, 1, 2])))) == 0.0
    padded = {k: jnp.concatenate([v, v[:1]]) if k != "common" else v for k, v in base.items()}
    padded["valid"] = padded["valid"].at[-1].set(False)
    assert float(losses.soft_weighted_triplet_loss(**padded)) == pytest.approx(
        float(losses.soft_weighted_triplet_loss(**base)), abs=1e-6)


def test_two_anchors_average_and_embeddings_are_normalised():
    """The mean runs over anchors; scaling an embedding does not change the loss."""
    two = dict(embeddings=jnp.concatenate([TINY["embeddings"], _on_circle([30])]),
               cluster_ids=jnp.concatenate([TINY["cluster_ids"], jnp.array([2])]),
               is_source=jnp.concatenate([TINY["is_source"], jnp.array([False])]),
               valid=jnp.ones(6, bool), common=TINY["common"])
    # Second anchor at 30 deg, cluster 2: positive at 120 deg (d = sqrt2), negatives at 60/90/180 deg.
    negatives = (2 * math.sin(math.radians(15)), 1.0, 2 * math.sin(math.radians(75)))
    d_minus = _softmax_mean(negatives, [-d for d in negatives])
    first = math.log1p(math.exp(_softmax_mean(D_POS, D_POS) - _softmax_mean(D_NEG, [-d for d in D_NEG])))
    second = math.log1p(math.exp(math.sqrt(2.0) - d_minus))
    assert float(losses.soft_weighted_triplet_loss(**two)) == pytest.approx((first + second) / 2, abs=1e-5)
    scaled = dict(two, embeddings=two["embeddings"] * jnp.array([[3.0], [0.5], [1], [7], [1], [2]]))
    assert float(losses.soft_weighted_triplet_loss(**scaled)) == pytest.approx((first + second) / 2, abs=1e-5)


@pytest.mark.parametrize("mining,form", [("soft", "softplus"), ("soft", "hinge"), ("hard", "softplus")])
def test_triplet_jit_equals_eager_and_gradients_are_finite(mining, form):
    rng = np.random.default_rng(0)
    m = 40
    args = dict(embeddings=jnp.asarray(rng.standard_normal((m, 8)), jnp.float32),
                cluster_ids=jnp.asarray(rng.integers(-1, 4, m)), is_source=jnp.asarray(rng.random(m) < 0.5),
                valid=jnp.asarray(rng.random(m) < 0.8), common=jnp.array([True, True, False, True]))
    # Duplicate rows: zero distances must not give NaN gradients.
    args["embeddings"] = args["embeddings"].at[1].set(args["embeddings"][0])

    def loss(embeddings):
        return losses.soft_weighted_triplet_loss(**dict(args, embeddings=embeddings), mining=mining, form=form,
                                                 margin=0.3)

    eager = loss(args["embeddings"])
    jitted = jax.jit(loss)(args["embeddings"])
    assert float(eager) > 0.0
    np.testing.assert_allclose(float(jitted), float(eager), rtol=1e-6)
    grad = jax.grad(loss)(args["embeddings"])
    assert np.all(np.isfinite(np.asarray(grad))) and np.any(np.asarray(grad) != 0)


def test_triplet_rejects_unknown_variants():
    with pytest.raises(ValueError, match="mining"):
        losses.soft_weighted_triplet_loss(**TINY, mining="semi")
    with pytest.raises(ValueError, match="form"):
        losses.soft_weighted_triplet_loss(**TINY, form="square")


def test_cross_entropy_weights_and_mask():
    logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    labels = jnp.array([0, 2, 2])
    nll = [-math.log(math.exp(2) / (math.exp(2) + 2)), -math.log(1 / (2 + math.e)),
           -math.log(math.exp(3) / (math.exp(3) + 2))]
    assert float(losses.cross_entropy_loss(logits, labels)) == pytest.approx(sum(nll) / 3, rel=1e-6)
    weights = jnp.array([2.0, 1.0, 0.5])
    expected = (2.0 * nll[0] + 0.5 * nll[1] + 0.5 * nll[2]) / 3.0
    assert float(losses.cross_entropy_loss(logits, labels, class_weights=weights)) == pytest.approx(expected, rel=1e-6)
    mask = jnp.array([True, False, True])
    expected = (2.0 * nll[0] + 0.5 * nll[2]) / 2.5
    got = losses.cross_entropy_loss(logits, labels, mask=mask, class_weights=weights)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    assert float(losses.cross_entropy_loss(logits, labels, mask=jnp.zeros(3, bool))) == 0.0


def test_coral_matches_numpy_and_handles_masks():
    rng = np.random.default_rng(1)
    source, target = rng.standard_normal((12, 3)), 2.0 * rng.standard_normal((9, 3)) + 1.0
    expected = np.sum((np.cov(source[:10], rowvar=False) - np.cov(target[:7], rowvar=False)) ** 2) / (4 * 9)
    source_mask, target_mask = np.arange(12) < 10, np.arange(9) < 7
    got = losses.coral_loss(jnp.asarray(source, jnp.float32), source_mask, jnp.asarray(target, jnp.float32),
                            target_mask)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert float(losses.coral_loss(jnp.asarray(source), source_mask, jnp.asarray(target), np.zeros(9, bool))) == 0.0
    # Layer CORAL: frames of source utterances against frames of target utterances.
    hidden = [jnp.asarray(rng.standard_normal((2, 5, 3)), jnp.float32)]
    frame_mask = jnp.array([[True] * 5, [True] * 3 + [False] * 2])
    got = losses.layer_coral_loss(hidden, frame_mask, jnp.array([True, False]), layers=[0])
    expected = np.sum((np.cov(np.asarray(hidden[0][0]), rowvar=False)
                       - np.cov(np.asarray(hidden[0][1, :3]), rowvar=False)) ** 2) / 36
    assert float(got) == pytest.approx(expected, rel=1e-5)


def _tiny_model_and_batch():
    rngs = nnx.Rngs(0)
    encoder = LogMelEncoder(LogMelConfig(n_mels=16, width=16, num_blocks=1, block_kernel=3), rngs=rngs)
    model = SegmentEmotionModel(encoder, width=16, num_layers=1, num_heads=2, classifier_hidden=16,
                                frozen_encoder=False, rngs=rngs)
    rng = np.random.default_rng(0)
    b, n, s = 8, 3200, 4
    audio = rng.standard_normal((b, n)).astype(np.float32)
    audio_mask = np.arange(n)[None, :] < rng.integers(2400, n + 1, b)[:, None]
    seg_start = np.tile(np.arange(s, dtype=np.float32) * 0.04, (b, 1))
    batch = dict(audio=audio * audio_mask, audio_mask=audio_mask, seg_start=seg_start, seg_end=seg_start + 0.04,
                 seg_mask=rng.random((b, s)) < 0.9, labels=rng.integers(0, 4, b),
                 is_source=np.arange(b) < b // 2, cluster_ids=rng.integers(-1, 3, (b, s)))
    return model, batch


def _train_step(graphdef, params, rest, batch):
    """One SGD step on L_ER (source rows) + 0.5 L_AG (flattened global segments)."""
    common = jnp.array([True, True, False])

    def loss_fn(params):
        model = nnx.merge(graphdef, params, rest)
        out = model(batch["audio"], batch["audio_mask"], batch["seg_start"], batch["seg_end"], batch["seg_mask"])
        ce = losses.cross_entropy_loss(out.logits, batch["labels"], mask=batch["is_source"])
        s = batch["seg_mask"].shape[1]
        triplet = losses.soft_weighted_triplet_loss(
            out.segment_embeddings.reshape(-1, out.segment_embeddings.shape[-1]), batch["cluster_ids"].reshape(-1),
            jnp.repeat(batch["is_source"], s), batch["seg_mask"].reshape(-1), common)
        return ce + 0.5 * triplet, triplet

    (loss, triplet), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return loss, triplet, jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)


def test_sharded_gradient_step_equals_single_device():
    assert len(jax.devices()) == 8
    model, batch = _tiny_model_and_batch()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    step = jax.jit(_train_step, static_argnums=0)
    single = step(graphdef, params, rest, {k: jnp.asarray(v) for k, v in batch.items()})

    mesh = sharding.create_mesh()
    sharded_batch = {k: jax.device_put(v, sharding.data_sharding(mesh)) for k, v in batch.items()}
    replicated = jax.device_put((params, rest), sharding.replicated_sharding(mesh))
    sharded = step(graphdef, *replicated, sharded_batch)
    assert len(sharded_batch["audio"].sharding.device_set) == 8

    assert float(single[1]) > 0.0  # the triplet term is active
    np.testing.assert_allclose(float(sharded[0]), float(single[0]), rtol=1e-5)
    np.testing.assert_allclose(float(sharded[1]), float(single[1]), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(single[2]), jax.tree.leaves(sharded[2])):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-6)


def test_sharded_triplet_sees_the_global_batch():
    """Anchors on one device, positives/negatives on others: the sharded loss equals the unsharded one."""
    rng = np.random.default_rng(3)
    m = 64
    is_source = np.arange(m) >= 8  # all targets live on the first device's shard
    args = dict(embeddings=rng.standard_normal((m, 4)).astype(np.float32), cluster_ids=rng.integers(0, 3, m),
                is_source=is_source, valid=np.ones(m, bool))
    common = jnp.array([True, True, True])
    loss = jax.jit(lambda a: losses.soft_weighted_triplet_loss(**a, common=common))
    single = loss({k: jnp.asarray(v) for k, v in args.items()})
    mesh = sharding.create_mesh()
    sharded = loss({k: jax.device_put(v, sharding.data_sharding(mesh)) for k, v in args.items()})
    assert float(single) > 0
    np.testing.assert_allclose(float(sharded), float(single), rtol=1e-6)
