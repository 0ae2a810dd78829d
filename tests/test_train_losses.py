"""The training objective of each method (artser_jax.objective.compute_losses) on a synthetic batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artser_jax import methods
from artser_jax import objective
from artser_jax import train
from artser_jax import train_state
from artser_jax.configs import demo


def _batch(rng, rows, max_segments, with_label):
    samples = 16000
    starts = np.sort(rng.uniform(0.0, 0.9, (rows, max_segments)), axis=1).astype(np.float32)
    batch = {"audio": rng.normal(size=(rows, samples)).astype(np.float32) * 0.1,
             "audio_mask": np.ones((rows, samples), bool), "seg_start": starts,
             "seg_end": starts + 0.08, "seg_mask": np.arange(max_segments)[None] < rng.integers(3, max_segments, (rows, 1)),
             "seg_cluster": rng.integers(-1, 3, (rows, max_segments)).astype(np.int32)}
    if with_label:
        batch["label"] = rng.integers(0, 4, rows).astype(np.int32)
    return {k: jnp.asarray(v) for k, v in batch.items()}


@pytest.mark.parametrize("method", methods.names())
def test_each_method_adds_its_loss_with_finite_gradients(method):
    config = demo.get_config(f"tiny,method={method}")
    rng = np.random.default_rng(0)
    segments = config.segments.max_segments
    batch = {"source": _batch(rng, 4, segments, True), "target": _batch(rng, 4, segments, False)}
    model = train_state.build_model(config, 4, nnx.Rngs(params=0, dropout=1))
    common = jnp.array([True, True, False])
    grad_fn = nnx.value_and_grad(objective.compute_losses, has_aux=True)
    (total, metrics), grads = grad_fn(model, batch, config, common, None)
    assert np.isfinite(float(total))
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    entry = methods.get(method)
    assert set(metrics) == {"loss", "loss_er", "source_accuracy", *entry.diagnostics}
    if not entry.uses_target:
        assert float(total) == pytest.approx(float(metrics["loss_er"]))
    else:
        extra_loss = entry.diagnostics[0]
        assert float(metrics[extra_loss]) > 0
        assert float(total) == pytest.approx(float(metrics["loss_er"]) + config.loss.gamma * float(metrics[extra_loss]),
                                             rel=1e-5)


def test_gamma_zero_ignores_the_target_batch():
    config = demo.get_config("tiny,method=agcc")
    config.loss.gamma = 0.0
    rng = np.random.default_rng(1)
    segments = config.segments.max_segments
    batch = {"source": _batch(rng, 4, segments, True), "target": _batch(rng, 4, segments, False)}
    model = train_state.build_model(config, 4, nnx.Rngs(params=0, dropout=1))
    _, metrics = objective.compute_losses(model, batch, config, jnp.ones(3, bool), None)
    assert "loss_ag" not in metrics


@pytest.mark.parametrize("loss, grad_norm", [(np.nan, 1.0), (1.0, np.inf), (np.float32(-np.inf), 0.5)])
def test_non_finite_loss_or_gradient_stops_the_run(loss, grad_norm):
    with pytest.raises(train.NonFiniteLossError, match="step 7"):
        train.check_finite(7, {"loss": loss, "grad_norm": grad_norm})
    train.check_finite(8, {"loss": np.float32(1.5), "grad_norm": np.float32(0.1)})
