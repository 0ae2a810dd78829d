"""The inference export of a trained run (`<workdir>/export/`) and its loading for prediction.

The export holds the model parameters (Orbax, through `checkpoint.export_model`) and the JSON sidecar
`model.json`: labels, sample rate, encoder, crop length, segment options, method and the full config.
A pretrained encoder's config files (the encoder registry's `export_files`) are copied into
`export/encoder`, so the export does not depend on the original folder; prediction rebuilds the
architecture from them and restores the parameters.
"""

import pathlib
import shutil

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from artser_jax import checkpoint as checkpoint_lib
from artser_jax import sharding
from artser_jax import train_state
from artser_jax.models import encoders

ENCODER_FOLDER = "encoder"  # inside the export, relative so the export can be moved


def export(directory, graphdef, state, config):
    """Writes the params-only export with its sidecar into `directory`."""
    model, _ = nnx.merge(graphdef, state)
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    saved_config = config.to_dict()
    export_files = encoders.get(config.model.encoder).export_files
    if export_files and jax.process_index() == 0:
        encoder_dir = pathlib.Path(directory) / ENCODER_FOLDER
        encoder_dir.mkdir(parents=True, exist_ok=True)
        for name in export_files:
            source = pathlib.Path(config.model.pretrained_dir) / name
            if source.exists():
                shutil.copyfile(source, encoder_dir / name)
        saved_config["model"]["pretrained_dir"] = ENCODER_FOLDER
    metadata = {"labels": list(config.labels), "sample_rate": config.input.sample_rate,
                "encoder": config.model.encoder, "max_seconds": config.input.max_seconds,
                "segments": config.segments.to_dict(), "method": config.method, "config": saved_config}
    checkpoint_lib.export_model(directory, params, metadata)


def load_exported_model(directory):
    """(model, metadata): the model rebuilt from the export's config, its params restored on one device."""
    metadata = checkpoint_lib.read_export_metadata(directory)
    config = ml_collections.ConfigDict(metadata["config"])
    if config.model.pretrained_dir:  # the encoder's config files inside the export
        config.model.pretrained_dir = str(pathlib.Path(directory) / config.model.pretrained_dir)
    abstract_model = nnx.eval_shape(
        lambda: train_state.build_model(config, len(metadata["labels"]), nnx.Rngs(0), load_weights=False))
    graphdef, abstract_params, rest = nnx.split(abstract_model, nnx.Param, ...)
    one_device = sharding.replicated_sharding(sharding.create_mesh(1))
    params = checkpoint_lib.load_exported_params(
        directory, checkpoint_lib.abstract_like(nnx.to_pure_dict(abstract_params), one_device))
    nnx.replace_by_pure_dict(abstract_params, params)
    # Non-parameter state (e.g. dropout RNG counters) is unused at inference; zeros give it a value.
    rest = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), rest)
    return nnx.merge(graphdef, abstract_params, rest), metadata
