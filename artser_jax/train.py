"""The one trainer: `train_and_evaluate(config, workdir)` for AG-CC and its baselines.

Sections follow big_vision: logging, mesh, input, model and optimizer (created sharded), step,
checkpoint load, evaluators, loop, final evaluation of the best checkpoint, export.

Resume order: an existing checkpoint in `workdir` (model, optimizer and data-iterator state), else a
fresh initialisation from `config.seed`. Model selection uses source-dev UAR only; target labels are
read by the evaluators and nowhere else.
"""

import logging
import pathlib
import shutil
import signal
import time

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm
from flax import nnx
from jax.experimental import multihost_utils

from artser_jax import checkpoint as checkpoint_lib
from artser_jax import evaluation
from artser_jax import input_pipeline
from artser_jax import losses
from artser_jax import sharding
from artser_jax.models import segment_model

METHODS = ("agcc", "source_only", "phoneme_anchored", "layer_anchored")
TRIPLET_METHODS = ("agcc", "phoneme_anchored")


class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient norm became NaN or infinite."""


def check_finite(step, metrics):
    """Raises NonFiniteLossError when the loss or the gradient norm of a step is NaN or infinite."""
    if not (np.isfinite(metrics["loss"]) and np.isfinite(metrics["grad_norm"])):
        raise NonFiniteLossError(
            f"step {step}: loss {metrics['loss']}, gradient norm {metrics['grad_norm']}; stopping. "
            f"Lower the learning rate or check the input data.")


class _LibraryInfoFilter(logging.Filter):
    """Drops INFO records of Orbax, Grain and JAX internals, which would bury the run's own progress."""

    def filter(self, record):
        return record.levelno >= logging.WARNING or not any(
            part in record.pathname for part in ("/orbax/", "/grain/", "/jax/", "/jaxlib/"))


def quiet_library_logs():
    """Installs `_LibraryInfoFilter` on the absl and root handlers (launch scripts call this)."""
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top

    for handler in [absl_logging.get_absl_handler(), *logging.getLogger().handlers]:
        if not any(isinstance(f, _LibraryInfoFilter) for f in handler.filters):
            handler.addFilter(_LibraryInfoFilter())


# ----------------------------------------------------------------------------------------------------
# Model, optimizer and train state.

def build_model(config, num_classes, rngs, load_pretrained=True):
    """The SegmentEmotionModel described by `config.model`.

    `load_pretrained=False` builds a pretrained encoder's architecture from its folder's config files
    only, for restoring exported parameters into it.
    """
    model_config = config.model
    pretrained = model_config.encoder in ("wav2vec2", "wavlm")
    if pretrained and not load_pretrained:
        from artser_jax.models import hf_loader  # pylint: disable=g-import-not-at-top
        from artser_jax.models import wav2vec2  # pylint: disable=g-import-not-at-top

        encoder = wav2vec2.Wav2Vec2Encoder(
            hf_loader.read_config(model_config.pretrained_dir), rngs=rngs,
            normalize_audio=hf_loader.read_do_normalize(model_config.pretrained_dir))
    else:
        encoder = segment_model.build_encoder(
            model_config.encoder, rngs=rngs, pretrained_path=model_config.pretrained_dir,
            logmel={**model_config.logmel.to_dict(), "dropout": model_config.dropout})
    if model_config.weighted_layer_sum:
        layer_selection = "weighted"
    elif model_config.encoder_layer == -1:
        layer_selection = "last"
    else:
        layer_selection = model_config.encoder_layer
    return segment_model.SegmentEmotionModel(
        encoder, num_classes=num_classes, width=model_config.transformer_width,
        num_layers=model_config.transformer_layers, num_heads=model_config.transformer_heads,
        dropout=model_config.dropout, classifier_hidden=model_config.classifier_hidden,
        layer_selection=layer_selection,
        # A log-mel front end is always trained; a pretrained encoder is frozen unless asked otherwise.
        frozen_encoder=pretrained and model_config.freeze_encoder, rngs=rngs)


def _parameter_group(path, _):
    return "encoder" if any(getattr(key, "key", None) == "encoder" for key in path) else "rest"


def build_optimizer(config):
    """AdamW with linear warm-up and cosine decay, gradient clipping by global norm. An unfrozen
    pretrained encoder gets its own (lower) peak learning rate."""

    def adamw(peak):
        schedule = optax.warmup_cosine_decay_schedule(
            init_value=0.0, peak_value=peak,
            warmup_steps=min(config.optimizer.warmup_steps, max(config.total_steps - 1, 1)),
            decay_steps=max(config.total_steps, 2), end_value=0.0)
        return optax.adamw(schedule, weight_decay=config.optimizer.weight_decay)

    fine_tuned = config.model.encoder in ("wav2vec2", "wavlm") and not config.model.freeze_encoder
    if fine_tuned:
        update = optax.multi_transform(
            {"encoder": adamw(config.optimizer.encoder_learning_rate),
             "rest": adamw(config.optimizer.learning_rate)},
            lambda params: jax.tree_util.tree_map_with_path(_parameter_group, params))
    else:
        update = adamw(config.optimizer.learning_rate)
    return optax.chain(optax.clip_by_global_norm(config.optimizer.grad_clip_norm), update)


def _is_key(x):
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def keys_to_data(state):
    """Typed PRNG keys -> raw uint32 key data, the form Orbax stores."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)


def keys_from_data(state, like):
    return jax.tree.map(lambda x, ref: jax.random.wrap_key_data(x) if _is_key(ref) else x, state, like)


def create_train_state(config, num_classes, mesh):
    """(graphdef, state) of the model and its optimizer, with the state created replicated on `mesh`."""
    tx = build_optimizer(config)

    def model_and_optimizer():
        model = build_model(config, num_classes, nnx.Rngs(params=config.seed, dropout=config.seed + 1))
        return model, nnx.Optimizer(model, tx, wrt=segment_model.trainable_filter(model))

    replicated = sharding.replicated_sharding(mesh)
    if config.model.encoder in ("wav2vec2", "wavlm"):
        # Pretrained weights are read from disk on the host; built inside jit they would be baked into
        # the compiled program as constants (hundreds of MB) and read twice.
        graphdef, state = nnx.split(model_and_optimizer())
        return graphdef, jax.device_put(state, replicated)
    graphdef, _ = nnx.split(nnx.eval_shape(model_and_optimizer))
    state = jax.jit(lambda: nnx.state(model_and_optimizer()), out_shardings=replicated)()
    return graphdef, state


# ----------------------------------------------------------------------------------------------------
# Losses and steps.

def _model_inputs(batch):
    return (batch["audio"], batch["audio_mask"], batch["seg_start"], batch["seg_end"], batch["seg_mask"])


def compute_losses(model, batch, config, common, class_weights):
    """(total loss, metrics) of one training batch `{'source': ..., 'target': ...}`."""
    source, target = batch["source"], batch["target"]
    gamma = config.loss.gamma
    use_target = config.method != "source_only" and gamma > 0
    if use_target:
        # One forward over source and target rows together (the same dropout stream for both).
        joined = jax.tree.map(lambda s, t: jnp.concatenate([s, t]), _pick(source), _pick(target))
        out = model(*_model_inputs(joined), deterministic=False)
        num_source = source["audio"].shape[0]
        logits = out.logits[:num_source]
    else:
        out = model(*_model_inputs(source), deterministic=False)
        logits = out.logits
    l_er = losses.cross_entropy_loss(logits, source["label"], class_weights=class_weights)
    metrics = {"loss_er": l_er,
               "source_accuracy": jnp.mean(jnp.argmax(logits, -1) == source["label"])}
    total = l_er
    if use_target and config.method in TRIPLET_METHODS:
        embeddings = out.segment_embeddings
        cluster = jnp.concatenate([source["seg_cluster"], target["seg_cluster"]])
        is_source = jnp.concatenate([jnp.ones_like(source["seg_mask"]), jnp.zeros_like(target["seg_mask"])])
        valid = jnp.concatenate([source["seg_mask"], target["seg_mask"]]) & (cluster >= 0)
        anchor_common = common if config.loss.anchor_clusters == "common" else jnp.ones_like(common)
        flat = (cluster.reshape(-1), is_source.reshape(-1), valid.reshape(-1), anchor_common)
        l_ag = losses.soft_weighted_triplet_loss(
            embeddings.reshape(-1, embeddings.shape[-1]), *flat, lam=config.loss.lam,
            margin=config.loss.margin, mining=config.loss.mining, form=config.loss.form)
        anchors, _, _ = losses.triplet_anchor_sets(*flat)
        metrics.update(loss_ag=l_ag, anchors_per_step=jnp.sum(anchors))
        total = total + gamma * l_ag
    elif use_target and config.method == "layer_anchored":
        if max(config.loss.coral_layers) >= len(out.hidden_states):
            raise ValueError(f"config.loss.coral_layers {tuple(config.loss.coral_layers)} name a layer the "
                             f"encoder lacks: it has {len(out.hidden_states)} selectable layers")
        is_source_row = jnp.arange(out.logits.shape[0]) < source["audio"].shape[0]
        l_coral = losses.layer_coral_loss(out.hidden_states, out.frame_mask, is_source_row,
                                          tuple(config.loss.coral_layers))
        metrics["loss_coral"] = l_coral
        total = total + gamma * l_coral
    metrics["loss"] = total
    return total, metrics


def _pick(batch):
    keys = ("audio", "audio_mask", "seg_start", "seg_end", "seg_mask")
    return {k: batch[k] for k in keys}


def make_train_step(graphdef, config, common, class_weights):
    def train_step(state, batch):
        model, optimizer = nnx.merge(graphdef, state)
        trainable = nnx.DiffState(0, segment_model.trainable_filter(model))
        grad_fn = nnx.value_and_grad(compute_losses, argnums=trainable, has_aux=True)
        (_, metrics), grads = grad_fn(model, batch, config, common, class_weights)
        metrics["grad_norm"] = optax.global_norm(grads)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), metrics
    return train_step


def make_eval_step(graphdef):
    def eval_step(state, batch):
        model, _ = nnx.merge(graphdef, state)
        out = model(*_model_inputs(batch), deterministic=True)
        return {"logits": out.logits, "label": batch["label"], "eval_mask": batch["eval_mask"],
                "utterance_id": batch["utterance_id"]}
    return eval_step


# ----------------------------------------------------------------------------------------------------
# Data.

def _segment_options(config):
    if config.segments.method == "phones":
        return {"min_video_frames": config.segments.min_video_frames}
    return {"window_seconds": config.segments.window_seconds, "hop_seconds": config.segments.hop_seconds}


def load_cluster_model(config):
    """The per-segment cluster assigner of the method: the fitted GestureModel (agcc), phone identities
    (phoneme_anchored), or None (the other methods need no clusters)."""
    from artser_jax import gestures  # pylint: disable=g-import-not-at-top

    if config.method == "agcc":
        if not config.gestures_path:
            raise ValueError("method 'agcc' needs --config.gestures_path (the output of launch/fit_gestures.py)")
        model = gestures.load_gesture_model(config.gestures_path)
        fitted = getattr(model, "config", None)
        if fitted is not None and fitted.segment_method != config.segments.method:
            raise ValueError(f"{config.gestures_path} was fitted on {fitted.segment_method!r} segments but "
                             f"config.segments.method is {config.segments.method!r}")
        return model
    if config.method == "phoneme_anchored":
        if config.segments.method != "phones":
            raise ValueError("method 'phoneme_anchored' needs config.segments.method='phones'")
        return gestures.phone_gesture_model(config.loss.anchor_phones)
    return None


def make_prepare(config, cluster_model, with_label):
    return input_pipeline.PrepareExample(
        max_samples=int(round(config.input.max_seconds * config.input.sample_rate)),
        sample_rate=config.input.sample_rate, segment_method=config.segments.method,
        max_segments=config.segments.max_segments, segment_options=_segment_options(config),
        cluster_model=cluster_model, with_label=with_label)


def open_sources(config):
    """Data sources by role, checking that both corpora label the same classes in the same order."""
    sources = {
        "source_train": input_pipeline.open_data_source(config.source.tfds_name, config.source.train_split,
                                                        config.data_dir),
        "target_train": input_pipeline.open_data_source(config.target.tfds_name, config.target.train_split,
                                                        config.data_dir),
    }
    for name, spec in config.evals.items():
        corpus = config[spec.corpus]
        sources[name] = input_pipeline.open_data_source(corpus.tfds_name, spec.split, config.data_dir)
    names = input_pipeline.class_names(sources["source_train"])
    for role, source in sources.items():
        if input_pipeline.class_names(source) != names:
            raise ValueError(f"{role} labels {input_pipeline.class_names(source)} differ from the source "
                             f"labels {names}; both corpora must use the same classes in the same order")
    if list(config.labels) != names:
        raise ValueError(f"config.labels {list(config.labels)} differ from the dataset labels {names}")
    return sources


# ----------------------------------------------------------------------------------------------------
# Evaluation.

def run_evaluation(name, eval_step, state, data_source, prepare, config, mesh, shard_options):
    """Logits, labels and ids of every utterance of one split (padding removed), on every process."""
    dataset, count = input_pipeline.eval_dataset(data_source, prepare, config.input.eval_batch_size,
                                                 shard_options)
    outputs = []
    for batch in tqdm.tqdm(dataset, desc=f"eval {name}", unit="batch", leave=False,
                           disable=jax.process_index() != 0):
        result = eval_step(state, sharding.host_to_global(batch, mesh))
        outputs.append(sharding.fetch_replicated(result))
    joined = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
    keep = joined["eval_mask"]
    if int(keep.sum()) != count:
        raise RuntimeError(f"{name}: evaluated {int(keep.sum())} utterances, the split has {count}")
    return (input_pipeline.decode_utterance_ids(joined["utterance_id"][keep]), joined["label"][keep],
            joined["logits"][keep])


def evaluate_all(names, eval_step, state, sources, prepares, config, mesh, shard_options, out_dir, step):
    """Runs the named evaluators and writes their reports under `out_dir/<name>/`; returns scalars."""
    scalars = {}
    for name in names:
        ids, labels, logits = run_evaluation(name, eval_step, state, sources[name], prepares[name], config,
                                             mesh, shard_options)
        if jax.process_index() == 0:
            spec = config.evals[name]
            report = evaluation.write_report(
                pathlib.Path(out_dir) / name, name, ids, labels, logits, list(config.labels),
                extra={"step": int(step), "corpus": config[spec.corpus].corpus, "split": spec.split,
                       "method": config.method})
        else:
            report = evaluation.classification_metrics(labels, logits.argmax(-1), len(config.labels))
        scalars.update({f"{name}/{k}": report[k] for k in ("uar", "wa", "macro_f1")})
    return scalars


# ----------------------------------------------------------------------------------------------------
# Preemption.

class PreemptionFlag:
    """Set by SIGTERM; the loop then saves a checkpoint and returns. Agreed across processes."""

    def __init__(self):
        self.requested = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        del signum, frame
        logging.warning("SIGTERM received: saving a checkpoint and stopping")
        self.requested = True

    def should_stop(self):
        if jax.process_count() == 1:
            return self.requested
        return bool(np.any(multihost_utils.process_allgather(np.array(self.requested))))

    def restore(self):
        signal.signal(signal.SIGTERM, self._previous)


# ----------------------------------------------------------------------------------------------------
# The loop.

def _validate(config):
    if config.method not in METHODS:
        raise ValueError(f"config.method must be one of {METHODS}, got {config.method!r}")
    if config.loss.anchor_clusters not in ("common", "all"):
        raise ValueError(f"config.loss.anchor_clusters must be 'common' or 'all', got "
                         f"{config.loss.anchor_clusters!r}")
    if config.loss.class_weights not in ("none", "balanced"):
        raise ValueError(f"config.loss.class_weights must be 'none' or 'balanced', got "
                         f"{config.loss.class_weights!r}")
    if not config.data_dir:
        raise ValueError("config.data_dir is not set (the --data_dir of launch/prepare_data.py)")
    if config.model.encoder in ("wav2vec2", "wavlm") and not config.model.pretrained_dir:
        # A randomly initialised (and by default frozen) wav2vec2 would train silently on noise features.
        raise ValueError(f"encoder {config.model.encoder!r} needs --config.model.pretrained_dir (a local Hugging "
                         f"Face folder with config.json and model weights); or use encoder=logmel")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir):
    """Trains, evaluates and exports; returns a dict with the final state and the final reports."""
    _validate(config)
    workdir = pathlib.Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    is_main = jax.process_index() == 0
    if is_main:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))

    # Mesh.
    mesh = sharding.create_mesh(config.mesh.num_devices)
    shard_options = grain.sharding.ShardByJaxProcess(drop_remainder=True)
    logging.info("Mesh: %d devices over %d processes (this is process %d)", mesh.devices.size,
                 jax.process_count(), jax.process_index())
    for size in (config.input.source_batch_size, config.input.target_batch_size,
                 config.input.eval_batch_size):
        sharding.local_batch_size(size, mesh)

    # Input.
    sources = open_sources(config)
    cluster_model = load_cluster_model(config)
    num_clusters = cluster_model.num_clusters if cluster_model is not None else 1
    common = jnp.asarray(cluster_model.common if cluster_model is not None else np.zeros(1, bool))
    train_iter = input_pipeline.training_iterator(
        sources["source_train"], sources["target_train"], make_prepare(config, cluster_model, True),
        make_prepare(config, cluster_model, False), source_batch_size=config.input.source_batch_size,
        target_batch_size=config.input.target_batch_size, seed=config.input.shuffle_seed + config.seed,
        shard_options=shard_options, worker_count=config.input.worker_count,
        prefetch_buffer=config.input.prefetch_buffer)
    eval_prepare = make_prepare(config, None, True)
    prepares = {name: eval_prepare for name in config.evals}
    num_classes = len(config.labels)
    if config.loss.class_weights == "balanced":
        counts = input_pipeline.label_counts(sources["source_train"], num_classes)
        class_weights = jnp.asarray(counts.sum() / (num_classes * np.maximum(counts, 1)), jnp.float32)
    else:
        class_weights = None
    logging.info("Method %s: %d clusters, %d common", config.method, num_clusters, int(np.sum(common)))

    # Model and optimizer, created sharded.
    graphdef, state = create_train_state(config, num_classes, mesh)
    num_params = sum(x.size for x in jax.tree.leaves(nnx.state(nnx.merge(graphdef, state)[0], nnx.Param)))
    logging.info("Model: %s encoder, %.2fM parameters", config.model.encoder, num_params / 1e6)

    # Steps.
    replicated = sharding.replicated_sharding(mesh)
    train_step = jax.jit(make_train_step(graphdef, config, common, class_weights), donate_argnums=0,
                         out_shardings=(replicated, replicated))
    eval_step = jax.jit(make_eval_step(graphdef), out_shardings=replicated)

    # Checkpoint load: resume from the workdir when it holds a checkpoint.
    ckpt = checkpoint_lib.TrainCheckpointer(workdir / "checkpoints", keep_latest=config.checkpoint.keep_latest,
                                            keep_best=config.checkpoint.keep_best,
                                            async_save=config.checkpoint.async_save)
    abstract = checkpoint_lib.abstract_like(keys_to_data(state), replicated)
    metrics_writer = evaluation.MetricsWriter(workdir, enabled=is_main)
    first_step = 1
    if ckpt.latest_step() is not None:
        start = ckpt.latest_step()
        state = keys_from_data(ckpt.restore(start, abstract, train_iter), state)
        metrics_writer.truncate_after(start)
        first_step = start + 1
        logging.info("Resuming at step %d", first_step)

    # Loop.
    preemption = PreemptionFlag()
    history = []
    step = first_step - 1
    timer = time.perf_counter()
    timed_steps = 0
    utterances_per_step = config.input.source_batch_size + config.input.target_batch_size
    progress = tqdm.tqdm(total=config.total_steps, initial=step, desc="train", unit="step", disable=not is_main)
    try:
        for step in range(first_step, config.total_steps + 1):
            batch = sharding.host_to_global(next(train_iter), mesh)
            state, metrics = train_step(state, batch)
            metrics = sharding.fetch_replicated(metrics)
            check_finite(step, metrics)
            timed_steps += 1
            progress.update(1)
            if step % config.log_every == 0 or step == config.total_steps:
                elapsed = time.perf_counter() - timer
                scalars = {k: float(v) for k, v in metrics.items()}
                scalars.update(steps_per_second=timed_steps / elapsed,
                               utterances_per_second=timed_steps * utterances_per_step / elapsed)
                metrics_writer.write(step, **scalars)
                history.append({"step": step, **scalars})
                progress.set_postfix(loss=f"{scalars['loss']:.3f}", ups=f"{scalars['utterances_per_second']:.1f}")
                logging.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in scalars.items()))
                timer, timed_steps = time.perf_counter(), 0
            eval_metrics = None
            if step % config.eval_every == 0 or step == config.total_steps:
                names = [n for n in config.evals if config.evals[n].get("during_training", True)]
                eval_metrics = evaluate_all(names, eval_step, state, sources, prepares, config, mesh,
                                            shard_options, workdir / "evals" / f"step_{step:06d}", step)
                metrics_writer.write(step, **eval_metrics)
                timer, timed_steps = time.perf_counter(), 0
            if eval_metrics is not None or step % config.checkpoint.save_every == 0:
                ckpt.save(step, keys_to_data(state), train_iter, metrics=eval_metrics,
                          force=eval_metrics is not None)
            if preemption.should_stop():
                ckpt.save(step, keys_to_data(state), train_iter, force=True)
                ckpt.close()
                progress.close()
                logging.warning("Preempted: checkpoint of step %d saved in %s; rerun to resume", step, workdir)
                return {"state": state, "graphdef": graphdef, "preempted": True, "step": step,
                        "history": history}
    finally:
        preemption.restore()
        progress.close()
    ckpt.wait()

    # Final evaluation of the best checkpoint (by source-dev UAR), then the inference export.
    best = ckpt.best_step() or step
    if best != step:
        state = keys_from_data(ckpt.restore(best, abstract), state)
    logging.info("Final evaluation of step %d (best source-dev UAR)", best)
    final = evaluate_all(list(config.evals), eval_step, state, sources, prepares, config, mesh,
                         shard_options, workdir / "final", best)
    metrics_writer.write(best, **{f"final/{k}": v for k, v in final.items()})
    ckpt.close()
    export(workdir / "export", graphdef, state, config)
    return {"state": state, "graphdef": graphdef, "preempted": False, "step": step, "best_step": best,
            "final": final, "history": history}


PRETRAINED_CONFIG_FILES = ("config.json", "preprocessor_config.json")


def export(directory, graphdef, state, config):
    """Params-only export with the JSON sidecar `predict.py` reads. A pretrained encoder's config files
    are copied into `directory/encoder`, so the export does not depend on the original folder."""
    model, _ = nnx.merge(graphdef, state)
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    saved_config = config.to_dict()
    if config.model.encoder in ("wav2vec2", "wavlm") and jax.process_index() == 0:
        encoder_dir = pathlib.Path(directory) / "encoder"
        encoder_dir.mkdir(parents=True, exist_ok=True)
        for name in PRETRAINED_CONFIG_FILES:
            source = pathlib.Path(config.model.pretrained_dir) / name
            if source.exists():
                shutil.copyfile(source, encoder_dir / name)
        saved_config["model"]["pretrained_dir"] = "encoder"  # relative to the export directory
    metadata = {"labels": list(config.labels), "sample_rate": config.input.sample_rate,
                "encoder": config.model.encoder, "max_seconds": config.input.max_seconds,
                "segments": config.segments.to_dict(), "method": config.method, "config": saved_config}
    checkpoint_lib.export_model(directory, params, _json_safe(metadata))


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def evaluate_checkpoint(config, workdir, step=None, out_dir=None):
    """Re-runs every evaluator on a checkpoint of `workdir` (default: the best by source-dev UAR)."""
    _validate(config)
    workdir = pathlib.Path(workdir).absolute()
    mesh = sharding.create_mesh(config.mesh.num_devices)
    shard_options = grain.sharding.ShardByJaxProcess(drop_remainder=True)
    sources = open_sources(config)
    graphdef, state = create_train_state(config, len(config.labels), mesh)
    ckpt = checkpoint_lib.TrainCheckpointer(workdir / "checkpoints", async_save=False)
    step = step if step is not None else (ckpt.best_step() or ckpt.latest_step())
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {workdir / 'checkpoints'}")
    abstract = checkpoint_lib.abstract_like(keys_to_data(state), sharding.replicated_sharding(mesh))
    state = keys_from_data(ckpt.restore(step, abstract), state)
    ckpt.close()
    eval_step = jax.jit(make_eval_step(graphdef), out_shardings=sharding.replicated_sharding(mesh))
    prepare = make_prepare(config, None, True)
    out_dir = pathlib.Path(out_dir) if out_dir else workdir / "evaluate" / f"step_{step:06d}"
    return evaluate_all(list(config.evals), eval_step, state, sources, {n: prepare for n in config.evals},
                        config, mesh, shard_options, out_dir, step)
