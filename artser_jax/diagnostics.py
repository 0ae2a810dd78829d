"""What anchoring does to the segment space, measured (issue 11, docs/controls.md "Diagnostics").

- `anchor_distance_gap`: over target anchors (target segments of anchoring clusters with at least one
  source positive and one source negative, the anchors of docs/method.md 2.4), the unweighted mean of
  (mean distance to the positives - mean distance to the negatives). Negative = anchors sit closer to
  their own cluster's source segments. Unlike the soft-weighted loss value, it does not rise when
  distances merely spread.
- `nearest_source_share`: the share of those anchors whose nearest source segment (of any assigned
  cluster) is in their cluster.
- `gradient_shares`: each loss term's share of the encoder gradient norm, share_i = |g_i| / sum_j |g_j|
  with g_ER = grad L_ER and g_method = grad (gamma * L_method), both over the encoder's parameters.
Distances are Euclidean between unit-normalised embeddings, as in the loss.

`checkpoint_diagnostics` computes all of them for every kept checkpoint of a run on one fixed batch of
training utterances (source and target, with the clusters the run anchors on), so each evaluation step of
the run gets its values without touching the training loop.
"""

import logging
import pathlib

import numpy as np


def _unit(embeddings):
    embeddings = np.asarray(embeddings, np.float64)
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)


def _anchor_sets(cluster_ids, is_source, valid, common):
    cluster_ids = np.asarray(cluster_ids, np.int64)
    valid = np.asarray(valid, bool) & (cluster_ids >= 0)
    is_source = np.asarray(is_source, bool)
    common = np.asarray(common, bool)
    in_common = common[np.clip(cluster_ids, 0, len(common) - 1)]
    anchors = valid & ~is_source & in_common
    source = valid & is_source
    same = cluster_ids[:, None] == cluster_ids[None, :]
    positives = anchors[:, None] & source[None, :] & same
    negatives = anchors[:, None] & source[None, :] & ~same
    usable = anchors & positives.any(1) & negatives.any(1)
    return usable, positives, negatives


def _usable_anchor_distances(embeddings, cluster_ids, is_source, valid, common):
    """Pairwise distances of unit embeddings, the usable anchors' rows (None when there is none), and the
    positive and negative masks."""
    unit = _unit(embeddings)
    distances = np.sqrt(np.maximum(2.0 - 2.0 * unit @ unit.T, 0.0))
    usable, positives, negatives = _anchor_sets(cluster_ids, is_source, valid, common)
    rows = np.flatnonzero(usable) if usable.any() else None
    return distances, rows, positives, negatives


def anchor_distance_gap(embeddings, cluster_ids, is_source, valid, common):
    """Unweighted mean over usable target anchors of mean D(positives) - mean D(negatives); NaN if none."""
    distances, rows, positives, negatives = _usable_anchor_distances(embeddings, cluster_ids, is_source, valid,
                                                                     common)
    if rows is None:
        return float("nan")
    positive_mean = (distances[rows] * positives[rows]).sum(1) / positives[rows].sum(1)
    negative_mean = (distances[rows] * negatives[rows]).sum(1) / negatives[rows].sum(1)
    return float(np.mean(positive_mean - negative_mean))


def nearest_source_share(embeddings, cluster_ids, is_source, valid, common):
    """Share of usable target anchors whose nearest assigned source segment is in their cluster; NaN if none."""
    distances, rows, positives, negatives = _usable_anchor_distances(embeddings, cluster_ids, is_source, valid,
                                                                     common)
    if rows is None:
        return float("nan")
    candidates = positives[rows] | negatives[rows]
    nearest = np.argmin(np.where(candidates, distances[rows], np.inf), axis=1)
    return float(np.mean(positives[rows, nearest]))


def gradient_shares(norms):
    """{term: norm} -> {term: norm / sum of norms}; all zero when every norm is zero."""
    total = float(sum(norms.values()))
    return {name: (float(value) / total if total > 0 else 0.0) for name, value in norms.items()}


def diagnostic_program(config, common):
    """One compiled program, model, batch -> (segment embeddings (B, S, D) of the joined batch, deterministic;
    {'loss_er': |grad L_ER|, <method>: |grad gamma L_method|} over the encoder's parameters), so the
    checkpoints of a run share one compilation instead of running op by op."""
    import jax
    import optax
    from flax import nnx

    from artser_jax import objective

    encoder_params = nnx.DiffState(0, nnx.All(nnx.Param, nnx.PathContains("encoder")))

    def emotion_term(model, batch):
        return objective.compute_losses(model, batch, config, common, None)[1]["loss_er"]

    def method_term(model, batch):
        total, metrics = objective.compute_losses(model, batch, config, common, None)
        return total - metrics["loss_er"]

    def encoder_norm(term, model, batch):
        return optax.global_norm(jax.tree.leaves(nnx.grad(term, argnums=encoder_params)(model, batch)))

    @nnx.jit
    def program(model, batch):
        joined = objective.joined_model_inputs(batch["source"], batch["target"])
        embeddings = model(*joined, deterministic=True).segment_embeddings
        norms = {"loss_er": encoder_norm(emotion_term, model, batch)}
        if objective.reads_target(config):
            norms[config.method] = encoder_norm(method_term, model, batch)
        return embeddings, norms

    return program


def _flat_segments(embeddings, batch):
    """(embeddings (M, D), cluster ids, is_source, valid) of a joined source+target batch's segments."""
    source, target = batch["source"], batch["target"]
    embeddings = np.asarray(embeddings)
    cluster = np.concatenate([source["seg_cluster"], target["seg_cluster"]])
    valid = np.concatenate([source["seg_mask"], target["seg_mask"]])
    is_source = np.concatenate([np.ones_like(source["seg_mask"]), np.zeros_like(target["seg_mask"])])
    return (embeddings.reshape(-1, embeddings.shape[-1]), cluster.reshape(-1), is_source.reshape(-1),
            valid.reshape(-1))


def segment_space(model, batch):
    """Deterministic segment embeddings of the joined batch, flattened, with their clusters and corpus."""
    from artser_jax import objective

    joined = objective.joined_model_inputs(batch["source"], batch["target"])
    return _flat_segments(model(*joined, deterministic=True).segment_embeddings, batch)


def model_diagnostics(program, model, batch, common):
    """Every diagnostic of one model state on one batch (`program`: `diagnostic_program` of the run)."""
    embeddings, norms = program(model, batch)
    embeddings, cluster, is_source, valid = _flat_segments(embeddings, batch)
    norms = {name: float(value) for name, value in norms.items()}
    values = {"anchor_distance_gap": anchor_distance_gap(embeddings, cluster, is_source, valid, common),
              "nearest_source_in_cluster": nearest_source_share(embeddings, cluster, is_source, valid, common)}
    values.update({f"grad_norm/{name}": value for name, value in norms.items()})
    values.update({f"grad_share/{name}": value for name, value in gradient_shares(norms).items()})
    return values


def diagnostics_batch(config, assigner, count=None):
    """A fixed batch of the first training utterances of both corpora, prepared with `assigner`'s clusters."""
    from artser_jax import input_pipeline
    from artser_jax import train

    batch = {}
    for role, with_label in (("source", True), ("target", False)):
        corpus = config[role]
        data = input_pipeline.open_data_source(corpus.tfds_name, corpus.train_split, config.data_dir)
        size = min(len(data), count or config.input[f"{role}_batch_size"])
        prepare = train.make_prepare(config, assigner, with_label)
        rows = [prepare.map(data[i]) for i in range(size)]
        batch[role] = {k: np.stack([row[k] for row in rows]) for k in rows[0] if k != "utterance_id"}
    return batch


def restored_models(config, workdir, steps):
    """Yields (step, model) for each of `steps` in `workdir` (step None: the freshly initialised model of
    config.seed), initialising the train state once for all of them."""
    from flax import nnx

    from artser_jax import checkpoint as checkpoint_lib
    from artser_jax import sharding
    from artser_jax import train_state

    mesh = sharding.create_mesh(config.mesh.num_devices)
    graphdef, initial = train_state.create_train_state(config, len(config.labels), mesh)
    abstract = checkpoint_lib.abstract_like(train_state.keys_to_data(initial), sharding.replicated_sharding(mesh))
    ckpt = checkpoint_lib.TrainCheckpointer(pathlib.Path(workdir) / "checkpoints", async_save=False)
    try:
        for step in steps:
            state = initial if step is None else train_state.keys_from_data(ckpt.restore(step, abstract), initial)
            yield step, nnx.merge(graphdef, state)[0]
    finally:
        ckpt.close()


def checkpoint_steps(workdir):
    from artser_jax import checkpoint as checkpoint_lib

    ckpt = checkpoint_lib.TrainCheckpointer(pathlib.Path(workdir) / "checkpoints", async_save=False)
    steps = sorted(ckpt.all_steps())
    ckpt.close()
    return steps


def checkpoint_diagnostics(config, workdir, batch, common):
    """[{'step': s, diagnostics...}] for the initial model (step 0) and every kept checkpoint of the run."""
    rows = []
    program = diagnostic_program(config, common)
    for step, model in restored_models(config, workdir, [None] + checkpoint_steps(workdir)):
        rows.append({"step": step or 0, **model_diagnostics(program, model, batch, common)})
        logging.info("diagnostics step %d: %s", rows[-1]["step"], rows[-1])
    return rows


def plot_embedding_projection(path, before, after, title):
    """2-D PCA of segment embeddings before and after training, coloured by corpus and by cluster.

    `before` and `after` are `segment_space` tuples; each is projected on its own principal axes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    figure, axes = plt.subplots(2, 2, figsize=(10, 9))
    for column, (name, (embeddings, cluster, is_source, valid)) in enumerate((("before", before), ("after", after))):
        points = PCA(n_components=2).fit_transform(_unit(embeddings[valid]))
        corpus = np.where(is_source[valid], "source", "target")
        for value, colour in (("source", "tab:blue"), ("target", "tab:orange")):
            chosen = corpus == value
            axes[0, column].scatter(*points[chosen].T, s=4, alpha=0.5, c=colour, label=value)
        axes[0, column].legend(markerscale=3)
        axes[0, column].set_title(f"{name} training: corpus")
        clusters = cluster[valid]
        scatter = axes[1, column].scatter(*points.T, s=4, alpha=0.6, c=np.where(clusters < 0, -1, clusters),
                                          cmap="tab20")
        figure.colorbar(scatter, ax=axes[1, column], label="cluster (-1: none)")
        axes[1, column].set_title(f"{name} training: cluster")
    figure.suptitle(title)
    figure.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
