"""The inference export of a trained run (`<workdir>/export/`) and its loading for prediction.

The export holds:
- the model parameters (Orbax, `params/`) and the sidecar `model.json`: labels, sample rate, encoder,
  crop length, segment options, method, the full config, and an integrity record (per-field hashes, the
  parameters' hash, the portable files' hashes; see `sidecar`);
- `model.stablehlo` and `model.onnx`, the audio-to-probabilities function in forms that run without
  this package's model code (see `portable`); a failure to write one is logged and recorded in the
  sidecar, and does not fail the training run that called the export;
- `MODEL_CARD.md` (see `model_card`);
- for a pretrained encoder, its config files (the encoder registry's `export_files`) in `encoder/`, so
  the export does not depend on the original folder.
"""

import logging
import pathlib
import shutil
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from artser_jax import checkpoint as checkpoint_lib
from artser_jax import model_card
from artser_jax import portable
from artser_jax import sharding
from artser_jax import sidecar
from artser_jax import train_state
from artser_jax.models import encoders
from artser_jax.models import segment_model

ENCODER_FOLDER = "encoder"  # inside the export, relative so the export can be moved


def flat_params(params):
    """`{path string: numpy array}` of a params pytree, the form `sidecar.params_hash` takes."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def _inference_model(model, host_params):
    """A copy of `model` holding `host_params` (numpy) and zeroed non-parameter state (dropout RNG
    counters, unused at inference), so that no array of the training mesh is baked into an export."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = jax.tree.map(lambda x: x, params)
    nnx.replace_by_pure_dict(params, host_params)
    rest = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), rest)
    return nnx.merge(graphdef, params, rest)


def _portable_forms(directory, model, metadata):
    """Writes model.stablehlo and model.onnx; returns the sidecar's `portable` record."""
    max_segments = int(metadata["segments"]["max_segments"])
    min_samples = int(round(metadata["min_audio_seconds"] * metadata["sample_rate"]))
    # The exported function places frame centres for up to MAX_SYMBOLIC_FRAMES frames.
    max_samples = int(segment_model.MAX_SYMBOLIC_FRAMES * model.encoder.frame_hop_seconds * metadata["sample_rate"])
    function = portable.probabilities_function(model)
    specs = portable.input_specs(max_segments, min_samples, max_samples)
    record = {"inputs": list(portable.INPUT_NAMES), "output": portable.OUTPUT_NAME, "max_segments": max_segments,
              "min_samples": min_samples, "max_samples": max_samples, "stablehlo": None, "onnx": None}
    check_inputs = portable.parity_inputs(metadata["sample_rate"], metadata["max_seconds"], max_segments)
    reference = np.asarray(jax.jit(function)(*check_inputs))
    try:
        started = time.perf_counter()
        (directory / portable.STABLEHLO_FILE).write_bytes(portable.export_stablehlo(function, specs))
        reloaded = portable.load_stablehlo(directory / portable.STABLEHLO_FILE)
        record.update(stablehlo=portable.STABLEHLO_FILE, stablehlo_seconds=round(time.perf_counter() - started, 2),
                      stablehlo_max_abs_diff=float(np.abs(np.asarray(reloaded(*check_inputs)) - reference).max()))
    except Exception as error:  # pylint: disable=broad-except  (an encoder may not support symbolic shapes)
        logging.warning("StableHLO export skipped: %s: %s", type(error).__name__, error)
        record["stablehlo_error"] = f"{type(error).__name__}: {str(error)[:500]}"
    try:
        import onnxruntime  # pylint: disable=g-import-not-at-top

        from artser_jax import predict  # pylint: disable=g-import-not-at-top  (predict imports export lazily)

        started = time.perf_counter()
        (directory / portable.ONNX_FILE).write_bytes(portable.export_onnx(function, specs, metadata["labels"]))
        session = predict.portable_session(onnxruntime, directory / portable.ONNX_FILE)
        got = session.run(None, dict(zip(portable.INPUT_NAMES, check_inputs)))[0]
        record.update(onnx=portable.ONNX_FILE, onnx_opset=portable.ONNX_OPSET,
                      onnx_seconds=round(time.perf_counter() - started, 2),
                      onnx_max_abs_diff=float(np.abs(got - reference).max()))
    except Exception as error:  # pylint: disable=broad-except  (jax2onnx covers most, not all, primitives)
        logging.warning("ONNX export skipped: %s: %s", type(error).__name__, error)
        (directory / portable.ONNX_FILE).unlink(missing_ok=True)
        record["onnx_error"] = f"{type(error).__name__}: {str(error)[:500]}"
    return record


def export(directory, graphdef, state, config, final_metrics=None, best_step=None):
    """Writes the export into `directory`: params, sidecar, portable forms and model card.

    `final_metrics`: the final evaluation's scalars (`{'source_dev/uar': ..., ...}`) and `best_step` the
    step they came from, for the model card.
    """
    directory = pathlib.Path(directory)
    model, _ = nnx.merge(graphdef, state)
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    # The parameters are replicated: each process's first shard is the whole array.
    # Replicated device arrays, or host arrays (the audio model rebuilt around a stored-features run).
    host_params = jax.tree.map(lambda x: np.asarray(x.addressable_data(0) if hasattr(x, "addressable_data") else x),
                               params)
    saved_config = config.to_dict()
    export_files = encoders.get(config.model.encoder).export_files
    is_writer = jax.process_index() == 0
    if export_files and is_writer:
        encoder_dir = directory / ENCODER_FOLDER
        encoder_dir.mkdir(parents=True, exist_ok=True)
        for name in export_files:
            source = pathlib.Path(config.model.pretrained_dir) / name
            if source.exists():
                shutil.copyfile(source, encoder_dir / name)
        saved_config["model"]["pretrained_dir"] = ENCODER_FOLDER
    metadata = {"labels": list(config.labels), "sample_rate": config.input.sample_rate,
                "encoder": config.model.encoder, "max_seconds": config.input.max_seconds,
                "segments": config.segments.to_dict(), "method": config.method,
                # One encoder frame: shorter audio has nothing to classify.
                "min_audio_seconds": float(model.encoder.frame_window_seconds), "config": saved_config}
    metadata["portable"] = None
    if is_writer:
        directory.mkdir(parents=True, exist_ok=True)
        metadata["portable"] = _portable_forms(directory, _inference_model(model, host_params), metadata)
    metadata = sidecar.with_integrity(metadata, sidecar.params_hash(flat_params(host_params)), directory)
    checkpoint_lib.export_model(directory, params, metadata)
    if is_writer:
        model_card.write(directory, metadata, config, final_metrics, best_step)


def load_exported_model(directory):
    """(model, metadata): the model rebuilt from the export's config, its params restored on one device
    and checked against the sidecar's hash (as are the sidecar's own fields)."""
    metadata = sidecar.read(directory)
    config = ml_collections.ConfigDict(metadata["config"])
    if config.model.pretrained_dir:  # the encoder's config files inside the export
        config.model.pretrained_dir = str(pathlib.Path(directory) / config.model.pretrained_dir)
    abstract_model = nnx.eval_shape(
        lambda: train_state.build_model(config, len(metadata["labels"]), nnx.Rngs(0), load_weights=False))
    graphdef, abstract_params, rest = nnx.split(abstract_model, nnx.Param, ...)
    one_device = sharding.replicated_sharding(sharding.create_mesh(1))
    try:
        params = checkpoint_lib.load_exported_params(
            directory, checkpoint_lib.abstract_like(nnx.to_pure_dict(abstract_params), one_device))
    except (ValueError, KeyError) as error:
        raise sidecar.ExportError(f"{pathlib.Path(directory) / 'params'}: does not fit the model described "
                                  f"by {pathlib.Path(directory) / sidecar.FILENAME} ({error})") from None
    sidecar.check_parameters(directory, metadata, flat_params(params))
    nnx.replace_by_pure_dict(abstract_params, params)
    # Non-parameter state (e.g. dropout RNG counters) is unused at inference; zeros give it a value.
    rest = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), rest)
    return nnx.merge(graphdef, abstract_params, rest), metadata
