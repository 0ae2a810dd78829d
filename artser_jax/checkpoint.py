"""The one Orbax module: training checkpoints (model + optimizer + data iterator) and model export.

Training checkpoints live in `<workdir>/checkpoints/<step>/` with two items saved together:
`state` (the train-state pytree of arrays) and `data` (the Grain iterator state, one JSON file per
process), so a restarted run continues with the same data order. A run on a frozen pretrained encoder
adds `frozen_encoder` (JSON: the encoder's name and its folder's SHA-256): its weights are not in `state`,
so a restore must find the same folder. Saves are asynchronous. The manager
keeps the best checkpoint by source-dev UAR plus the latest few. Restores take an abstract target whose
leaves carry the shardings of *this* run, so a checkpoint written on 8 devices restores on 1.

The export (`<workdir>/export/`) holds only the model parameters plus `model.json` (labels, sample rate,
encoder, config): everything `predict.py` needs for audio-only inference.
"""

import json
import logging
import pathlib
import re
import shutil

import grain
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

BEST_METRIC = "source_dev/uar"  # model selection never looks at target labels
EXPORT_METADATA = "model.json"
FROZEN_ENCODER = "frozen_encoder"
UNREADABLE_DIR = "checkpoints_unreadable"  # beside the checkpoints folder: damaged steps are moved here


class NoReadableCheckpointError(RuntimeError):
    """Every checkpoint of a run failed to restore."""


def _failure_summary(error, step_dir):
    """(file, reason) of a failed restore: the longest path inside `step_dir` that the error chain names
    (else the step folder) and the first line of the innermost message."""
    messages = []
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    text = "\n".join(messages)
    # The most specific path the messages name (a data file rather than the step's folder).
    found = max(re.finditer(re.escape(str(step_dir)) + r"[^\s'\",:;)\]]*", text), key=lambda m: len(m.group(0)),
                default=None)
    reason = next((m.strip().splitlines()[0] for m in reversed(messages) if m.strip()), "unknown error")
    return (found.group(0) if found else str(step_dir)), reason[:300]


def _best_metric(metrics):
    return metrics[BEST_METRIC]


class TrainCheckpointer:
    """One CheckpointManager for a training run in `directory`."""

    def __init__(self, directory, *, keep_latest=2, keep_best=1, async_save=True):
        self.directory = pathlib.Path(directory).absolute()
        policy = checkpoint_managers.AnyPreservationPolicy([
            checkpoint_managers.LatestN(keep_latest),
            checkpoint_managers.BestN(get_metric_fn=_best_metric, n=keep_best,
                                      keep_checkpoints_without_metrics=False),
        ])
        options = ocp.CheckpointManagerOptions(
            # best_fn makes the manager store the metrics with each step; the policy decides what stays.
            best_fn=_best_metric, best_mode="max", preservation_policy=policy, enable_async_checkpointing=async_save, create=True,
            cleanup_tmp_directories=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "data", FROZEN_ENCODER))

    def latest_step(self):
        return self.manager.latest_step()

    def all_steps(self):
        return list(self.manager.all_steps())

    def save(self, step, state, data_iterator, metrics=None, force=False, frozen_encoder=None):
        """Starts an (async) save of `state` and the iterator; `metrics` must hold source_dev/uar if given;
        `frozen_encoder` (a JSON-able dict) records the frozen encoder whose weights `state` leaves out."""
        items = {"state": ocp.args.StandardSave(state), "data": grain.checkpoint.CheckpointSave(data_iterator)}
        if frozen_encoder is not None:
            items[FROZEN_ENCODER] = ocp.args.JsonSave(frozen_encoder)
        saved = self.manager.save(step, args=ocp.args.Composite(**items), metrics=metrics, force=force)
        if saved:
            logging.info("Checkpoint for step %d started -> %s", step, self.directory / str(step))
        return saved

    def restore(self, step, abstract_state, data_iterator=None):
        """Restores step `step` into `abstract_state`'s shapes, dtypes and shardings.

        `data_iterator` (if given) is set to the saved position in place. Returns the state.
        """
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        logging.info("Restored checkpoint step %d from %s", step, self.directory)
        return restored["state"]

    def frozen_encoder(self, step):
        """The `frozen_encoder` record saved with `step`, or None when it has none."""
        if not (self.directory / str(step) / FROZEN_ENCODER).is_dir():
            return None
        return self.manager.restore(step, args=ocp.args.Composite(
            **{FROZEN_ENCODER: ocp.args.JsonRestore()}))[FROZEN_ENCODER]

    def restore_newest_readable(self, abstract_state, data_iterator=None, move_aside=True):
        """(step, state) of the newest checkpoint that restores, or (None, None) when there is none.

        A checkpoint that fails to restore is reported in one line (step, file, reason) and, when
        `move_aside` (process 0 of a run), moved into `<run>/checkpoints_unreadable/` rather than deleted;
        the next newest is tried. If checkpoints exist but none restores, NoReadableCheckpointError names
        every step tried.
        """
        tried = []
        for step in sorted(self.all_steps(), reverse=True):
            step_dir = self.directory / str(step)
            try:
                return step, self.restore(step, abstract_state, data_iterator)
            except Exception as error:  # Orbax, TensorStore and Grain raise many types for damaged files
                file, reason = _failure_summary(error, step_dir)
                tried.append(f"step {step} ({file}: {reason})")
                logging.error("Checkpoint step %d is unreadable: %s: %s", step, file, reason)
                if move_aside:
                    self._move_aside(step_dir)
        if tried:
            raise NoReadableCheckpointError(f"no checkpoint in {self.directory} could be restored; tried "
                                            + "; ".join(tried))
        return None, None

    def _move_aside(self, step_dir):
        target_root = self.directory.parent / UNREADABLE_DIR
        target_root.mkdir(parents=True, exist_ok=True)
        target = target_root / step_dir.name
        suffix = 1
        while target.exists():
            target = target_root / f"{step_dir.name}.{suffix}"
            suffix += 1
        shutil.move(str(step_dir), str(target))
        logging.warning("Moved the unreadable checkpoint %s to %s; trying the next newest", step_dir, target)
        self.manager.reload()

    def best_step(self):
        """The kept step with the highest source-dev UAR, or None when no evaluated step is kept."""
        best = self.manager.best_step()
        return best if best is not None and self.manager.metrics(best) is not None else None

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()


def abstract_like(tree, shardings):
    """ShapeDtypeStructs of `tree` carrying `shardings` (a matching tree or one sharding for all)."""
    if isinstance(shardings, jax.sharding.Sharding):
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=shardings), tree)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def export_model(directory, params, metadata):
    """Writes the params-only pytree to `directory/params` and `metadata` (JSON-able) to model.json."""
    directory = pathlib.Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(directory / "params", params, force=True)
        checkpointer.wait_until_finished()
    if jax.process_index() == 0:
        (directory / EXPORT_METADATA).write_text(json.dumps(metadata, indent=2))
    logging.info("Exported model to %s", directory)


def read_export_metadata(directory):
    path = pathlib.Path(directory) / EXPORT_METADATA
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {directory} is not a model exported by launch/train.py")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable export sidecar ({error}); re-export the run") from None


def load_exported_params(directory, abstract_params):
    """Restores exported params into `abstract_params` (ShapeDtypeStructs with the wanted sharding)."""
    path = pathlib.Path(directory).absolute() / "params"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {directory} is not a model exported by launch/train.py")
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(path, abstract_params)
