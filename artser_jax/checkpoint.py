"""The one Orbax module: training checkpoints (model + optimizer + data iterator) and model export.

Training checkpoints live in `<workdir>/checkpoints/<step>/` with two items saved together:
`state` (the train-state pytree of arrays) and `data` (the Grain iterator state, one JSON file per
process), so a restarted run continues with the same data order. Saves are asynchronous. The manager
keeps the best checkpoint by source-dev UAR plus the latest few. Restores take an abstract target whose
leaves carry the shardings of *this* run, so a checkpoint written on 8 devices restores on 1.

The export (`<workdir>/export/`) holds only the model parameters plus `model.json` (labels, sample rate,
encoder, config): everything `predict.py` needs for audio-only inference.
"""

import json
import logging
import pathlib

import grain
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

BEST_METRIC = "source_dev/uar"  # model selection never looks at target labels
EXPORT_METADATA = "model.json"


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
                                             item_names=("state", "data"))

    def latest_step(self):
        return self.manager.latest_step()

    def all_steps(self):
        return list(self.manager.all_steps())

    def save(self, step, state, data_iterator, metrics=None, force=False):
        """Starts an (async) save of `state` and the iterator; `metrics` must hold source_dev/uar if given."""
        saved = self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                    data=grain.checkpoint.CheckpointSave(data_iterator)),
            metrics=metrics, force=force)
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
    return json.loads(path.read_text())


def load_exported_params(directory, abstract_params):
    """Restores exported params into `abstract_params` (ShapeDtypeStructs with the wanted sharding)."""
    path = pathlib.Path(directory).absolute() / "params"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {directory} is not a model exported by launch/train.py")
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(path, abstract_params)
