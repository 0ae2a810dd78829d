"""The one trainer: `train_and_evaluate(config, workdir)` for AG-CC and its baselines.

Sections follow big_vision: logging, mesh, input, model and optimizer (created sharded), step,
checkpoint load, evaluators, loop, final evaluation of the best checkpoint, export. The pieces live in
their own modules: the method's loss and cluster assigner in `methods`, the objective and steps in
`objective`, model and optimizer in `train_state`, the evaluators in `evaluation`, the export in `export`.

Resume order: an existing checkpoint in `workdir` (model, optimizer and data-iterator state), else a
fresh initialisation from `config.seed`. Model selection uses source-dev UAR only; target labels are
read by the evaluators and nowhere else.
"""

import json
import logging
import pathlib
import signal
import time

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from flax import nnx
from jax.experimental import multihost_utils

from artser_jax import checkpoint as checkpoint_lib
from artser_jax import evaluation
from artser_jax import export as export_lib
from artser_jax import feature_store
from artser_jax import input_pipeline
from artser_jax import methods
from artser_jax import objective
from artser_jax import segments as segments_lib
from artser_jax import sharding
from artser_jax import train_state
from artser_jax import workdir_lock
from artser_jax.models import encoders


class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient norm became NaN or infinite."""


def check_finite(step, metrics):
    """Raises NonFiniteLossError when the loss or the gradient norm of a step is NaN or infinite."""
    if not (np.isfinite(metrics["loss"]) and np.isfinite(metrics["grad_norm"])):
        raise NonFiniteLossError(
            f"step {step}: loss {metrics['loss']}, gradient norm {metrics['grad_norm']}; stopping. "
            f"Lower the learning rate or check the input data.")


# ----------------------------------------------------------------------------------------------------
# Data.

def load_cluster_model(config):
    """The method's per-segment cluster assigner (see `artser_jax.methods`), or None."""
    assigner = methods.get(config.method).cluster_assigner
    return assigner(config) if assigner is not None else None


def make_prepare(config, cluster_model, with_label):
    return input_pipeline.PrepareExample(
        max_samples=int(round(config.input.max_seconds * config.input.sample_rate)),
        sample_rate=config.input.sample_rate, segment_method=config.segments.method,
        max_segments=config.segments.max_segments,
        segment_options=segments_lib.segment_options(config.segments.method, config.segments),
        cluster_model=cluster_model, with_label=with_label, stored_features=feature_store.enabled(config))


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

class ConfigError(ValueError):
    """The config breaks a rule; raised before any work, naming each field and its rule."""


PREEMPTED_EXIT_STATUS = 75  # EX_TEMPFAIL: stopped by SIGTERM after a checkpoint; rerun to resume
# Fields a resumed run may change: where things are and how often it logs, evaluates and saves. Any other
# difference from the checkpointed run's config.json is refused (it would mix two experiments).
RESUME_MAY_CHANGE = ("data_dir", "gestures_path", "model.pretrained_dir", "model.feature_store_dir", "log_every",
                     "eval_every", "checkpoint", "mesh", "input.worker_count", "input.prefetch_buffer",
                     "input.eval_batch_size")


def validate_config(config):
    """Raises ConfigError listing every field of `config` that breaks its rule."""
    problems = []

    def require(ok, field, rule):
        if not ok:
            problems.append(f"config.{field} = {_field(config, field)!r}: {rule}")

    for field, registry in (("method", methods), ("model.encoder", encoders)):
        try:
            registry.get(config[field] if field == "method" else config.model.encoder)
        except ValueError as error:
            problems.append(f"config.{field}: {error}")
    require(config.loss.anchor_clusters in ("common", "all"), "loss.anchor_clusters", "must be 'common' or 'all'")
    require(config.loss.class_weights in ("none", "balanced"), "loss.class_weights",
            "must be 'none' or 'balanced'")
    require(config.model.feature_store_dtype in feature_store.DTYPES, "model.feature_store_dtype",
            f"must be one of {feature_store.DTYPES}")
    require(bool(config.data_dir), "data_dir", "must be set (the --data_dir of launch/prepare_data.py)")
    if config.model.encoder in encoders.names() and encoders.get(config.model.encoder).pretrained:
        # A randomly initialised (and by default frozen) wav2vec2 would train silently on noise features.
        require(bool(config.model.pretrained_dir), "model.pretrained_dir",
                f"encoder {config.model.encoder!r} needs a local Hugging Face folder with config.json and "
                f"model weights (or use encoder=logmel)")
    for field in ("optimizer.learning_rate", "optimizer.encoder_learning_rate", "optimizer.grad_clip_norm",
                  "input.max_seconds", "input.sample_rate", "loss.lam"):
        require(_number(config, field) > 0, field, "must be > 0")
    for field in ("optimizer.weight_decay", "optimizer.warmup_steps", "loss.gamma", "loss.margin"):
        require(_number(config, field) >= 0, field, "must be >= 0")
    for field in ("total_steps", "log_every", "eval_every", "checkpoint.save_every", "checkpoint.keep_latest",
                  "checkpoint.keep_best", "segments.max_segments"):
        require(_number(config, field) >= 1, field, "must be >= 1")
    for field in ("input.source_batch_size", "input.target_batch_size", "input.eval_batch_size"):
        size = _number(config, field)
        require(size >= 1 and size % jax.process_count() == 0, field,
                f"must be >= 1 and divisible by the process count ({jax.process_count()})")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def _field(config, field):
    value = config
    for key in field.split("."):
        value = value[key]
    return value


def _number(config, field):
    value = _field(config, field)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        items = {}
        for key, value in tree.items():
            items.update(_flat(value, f"{prefix}{key}."))
        return items
    return {prefix[:-1]: tree}


def check_frozen_encoder(ckpt, step, record):
    """Raises ConfigError when checkpoint `step` was trained on a frozen encoder whose folder's files
    differ from `record`'s (the checkpoints do not hold frozen weights; they need the same folder)."""
    saved = ckpt.frozen_encoder(step)
    if saved is not None and record is not None and saved["sha256"] != record["sha256"]:
        raise ConfigError(
            f"{ckpt.directory} was trained on the frozen {saved['encoder']} in {saved['pretrained_dir']} (SHA-256 "
            f"{saved['sha256']}), but config.model.pretrained_dir {record['pretrained_dir']} holds other files "
            f"(SHA-256 {record['sha256']}); give the original folder, or use a new --workdir")


def check_resumable(config, workdir):
    """Raises ConfigError when `config` differs from the checkpointed run's `workdir/config.json` in a
    field outside RESUME_MAY_CHANGE, naming each such field with both values."""
    path = pathlib.Path(workdir) / "config.json"
    if not path.exists():
        return
    try:
        saved = _flat(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: unreadable ({error}); cannot check that the run being resumed is this "
                          f"config's") from None
    current = _flat(json.loads(config.to_json_best_effort()))
    changed = [key for key in sorted(set(saved) | set(current))
               if saved.get(key) != current.get(key)
               and not any(key == allowed or key.startswith(allowed + ".") for allowed in RESUME_MAY_CHANGE)]
    if changed:
        details = "; ".join(f"config.{key} was {saved.get(key)!r}, now {current.get(key)!r}" for key in changed)
        raise ConfigError(f"{workdir} holds checkpoints of a run with another config ({path}): {details}. "
                          f"Use a new --workdir, or the same config to resume")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir):
    """Trains, evaluates and exports; returns a dict with the final state and the final reports.

    Nothing is written before the config is validated; process 0 then holds the workdir's lock for the
    whole run, so a second run into the same workdir fails at once."""
    validate_config(config)
    workdir = pathlib.Path(workdir).absolute()
    is_main = jax.process_index() == 0
    lock = workdir_lock.WorkdirLock(workdir).acquire() if is_main else None
    try:
        return _train_and_evaluate(config, workdir, is_main)
    finally:
        if lock is not None:
            lock.release()


def _train_and_evaluate(config, workdir, is_main):
    # Mesh.
    mesh = sharding.create_mesh(config.mesh.num_devices)
    shard_options = grain.sharding.ShardByJaxProcess(drop_remainder=True)
    logging.info("Mesh: %d devices over %d processes (this is process %d)", mesh.devices.size,
                 jax.process_count(), jax.process_index())
    for size in (config.input.source_batch_size, config.input.target_batch_size,
                 config.input.eval_batch_size):
        sharding.local_batch_size(size, mesh)
    ckpt = checkpoint_lib.TrainCheckpointer(workdir / "checkpoints", keep_latest=config.checkpoint.keep_latest,
                                            keep_best=config.checkpoint.keep_best,
                                            async_save=config.checkpoint.async_save)
    frozen_encoder = train_state.frozen_encoder_record(config)
    if ckpt.all_steps():  # a resume of another experiment stops before any extraction or compilation
        check_resumable(config, workdir)
        check_frozen_encoder(ckpt, ckpt.latest_step(), frozen_encoder)

    # Input; with a frozen pretrained encoder, its stored features (extracted now where missing).
    sources = open_sources(config)
    num_classes = len(config.labels)
    if config.loss.class_weights == "balanced":
        counts = input_pipeline.label_counts(sources["source_train"], num_classes)
        class_weights = jnp.asarray(counts.sum() / (num_classes * np.maximum(counts, 1)), jnp.float32)
    else:
        class_weights = None
    model_config = config
    if feature_store.enabled(config):
        sources, model_config = feature_store.open_stores(config, sources, mesh)
    cluster_model = load_cluster_model(config)
    num_clusters = cluster_model.num_clusters if cluster_model is not None else 1
    common = jnp.asarray(cluster_model.common if cluster_model is not None else np.zeros(1, bool))
    train_iter = input_pipeline.training_iterator(
        sources["source_train"], sources["target_train"], make_prepare(config, cluster_model, True),
        make_prepare(config, cluster_model, False), source_batch_size=config.input.source_batch_size,
        target_batch_size=config.input.target_batch_size, seed=config.input.shuffle_seed + config.seed,
        shard_options=shard_options, worker_count=config.input.worker_count,
        prefetch_buffer=config.input.prefetch_buffer, keep_prepared=config.input.keep_prepared_in_memory)
    eval_prepare = make_prepare(config, None, True)
    prepares = {name: eval_prepare for name in config.evals}
    logging.info("Method %s: %d clusters, %d common", config.method, num_clusters, int(np.sum(common)))

    # Model and optimizer, created sharded.
    graphdef, state = train_state.create_train_state(model_config, num_classes, mesh)
    num_params = sum(x.size for x in jax.tree.leaves(nnx.state(nnx.merge(graphdef, state)[0], nnx.Param)))
    logging.info("Model: %s encoder, %.2fM parameters", model_config.model.encoder, num_params / 1e6)

    # Steps.
    replicated = sharding.replicated_sharding(mesh)
    train_step = jax.jit(objective.make_train_step(graphdef, config, common, class_weights), donate_argnums=0,
                         out_shardings=(replicated, replicated))
    eval_step = jax.jit(objective.make_eval_step(graphdef), out_shardings=replicated)

    # Checkpoint load: resume from the newest readable checkpoint of the workdir, if it holds one.
    abstract = checkpoint_lib.abstract_like(train_state.to_checkpoint(state, model_config), replicated)
    metrics_writer = evaluation.MetricsWriter(workdir, enabled=is_main)
    first_step = 1
    if ckpt.all_steps():
        start, restored = ckpt.restore_newest_readable(abstract, train_iter, move_aside=is_main)
        state = train_state.from_checkpoint(restored, state, model_config)
        metrics_writer.truncate_after(start)
        first_step = start + 1
        logging.info("Resuming at step %d", first_step)
    if is_main:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))

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
                eval_metrics = evaluation.evaluate_all(names, eval_step, state, sources, prepares, config, mesh,
                                            shard_options, workdir / "evals" / f"step_{step:06d}", step)
                metrics_writer.write(step, **eval_metrics)
                timer, timed_steps = time.perf_counter(), 0
            if eval_metrics is not None or step % config.checkpoint.save_every == 0:
                ckpt.save(step, train_state.to_checkpoint(state, model_config), train_iter, metrics=eval_metrics,
                          force=eval_metrics is not None, frozen_encoder=frozen_encoder)
            if preemption.should_stop():
                ckpt.save(step, train_state.to_checkpoint(state, model_config), train_iter, force=True,
                          frozen_encoder=frozen_encoder)
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
        state = train_state.from_checkpoint(ckpt.restore(best, abstract), state, model_config)
    logging.info("Final evaluation of step %d (best source-dev UAR)", best)
    final = evaluation.evaluate_all(list(config.evals), eval_step, state, sources, prepares, config, mesh,
                         shard_options, workdir / "final", best)
    metrics_writer.write(best, **{f"final/{k}": v for k, v in final.items()})
    ckpt.close()
    if feature_store.enabled(config):  # the export runs on audio: the real encoder and the trained rest
        graphdef, state = train_state.audio_model_state(config, num_classes, graphdef, state)
    export_lib.export(workdir / "export", graphdef, state, config, final_metrics=final, best_step=best)
    return {"state": state, "graphdef": graphdef, "preempted": False, "step": step, "best_step": best,
            "final": final, "history": history}


def _adopt_trained_segments(config, workdir):
    """Evaluates with the segmentation the run trained with (AG-CC takes its gesture model's), as its
    config.json records it."""
    path = pathlib.Path(workdir) / "config.json"
    if not path.exists():
        return
    try:
        trained = json.loads(path.read_text())["segments"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError) as error:
        raise ConfigError(f"{path}: unreadable run config ({error!r})") from None
    if trained != config.segments.to_dict():
        logging.warning("Evaluating with the segments the run trained with (%s): %s", path, trained)
        for field, value in trained.items():
            config.segments[field] = value


def evaluate_checkpoint(config, workdir, step=None, out_dir=None):
    """Re-runs every evaluator on a checkpoint of `workdir` (default: the best by source-dev UAR)."""
    validate_config(config)
    workdir = pathlib.Path(workdir).absolute()
    if not (workdir / "checkpoints").is_dir():
        raise FileNotFoundError(f"{workdir} is not a training run: it has no checkpoints folder "
                                f"(nothing was created)")
    mesh = sharding.create_mesh(config.mesh.num_devices)
    shard_options = grain.sharding.ShardByJaxProcess(drop_remainder=True)
    _adopt_trained_segments(config, workdir)
    sources, model_config = open_sources(config), config
    if feature_store.enabled(config):
        sources, model_config = feature_store.open_stores(config, sources, mesh)
    graphdef, state = train_state.create_train_state(model_config, len(config.labels), mesh)
    ckpt = checkpoint_lib.TrainCheckpointer(workdir / "checkpoints", async_save=False)
    step = step if step is not None else (ckpt.best_step() or ckpt.latest_step())
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {workdir / 'checkpoints'}")
    check_frozen_encoder(ckpt, step, train_state.frozen_encoder_record(config))
    abstract = checkpoint_lib.abstract_like(train_state.to_checkpoint(state, model_config),
                                            sharding.replicated_sharding(mesh))
    state = train_state.from_checkpoint(ckpt.restore(step, abstract), state, model_config)
    ckpt.close()
    eval_step = jax.jit(objective.make_eval_step(graphdef), out_shardings=sharding.replicated_sharding(mesh))
    prepare = make_prepare(config, None, True)
    out_dir = pathlib.Path(out_dir) if out_dir else workdir / "evaluate" / f"step_{step:06d}"
    return evaluation.evaluate_all(list(config.evals), eval_step, state, sources, {n: prepare for n in config.evals},
                        config, mesh, shard_options, out_dir, step)
