"""Local Hugging Face wav2vec2 / WavLM folder -> our `Wav2Vec2Encoder`, with no network access.

A folder holds `config.json` (and usually `preprocessor_config.json`, whose `do_normalize` we follow)
and the weights as `model.safetensors` (or a sharded `model.safetensors.index.json`), or as
`pytorch_model.bin` (read with torch, only when torch is installed). Checkpoints of task models
(`Wav2Vec2ForCTC`, `...ForPreTraining`, `WavLMForXVector`, ...) keep the encoder under a `wav2vec2.` /
`wavlm.` prefix; everything outside it is a task head we do not use and is logged, not loaded. Every
encoder weight must be present and every encoder-prefixed tensor must be used, otherwise the error
names each offending key.
"""

import json
import logging
import pathlib

import jax.numpy as jnp
import numpy as np
from flax import nnx

from artser_jax.models.wav2vec2 import Wav2Vec2Config, Wav2Vec2Encoder

log = logging.getLogger(__name__)

# Present in bare pretraining checkpoints, used only by SpecAugment during pretraining.
_IGNORED_ENCODER_KEYS = ("masked_spec_embed",)


def read_config(folder):
    path = pathlib.Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config.json in the model folder")
    try:
        hf_config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    return Wav2Vec2Config.from_hf_dict(hf_config, source=str(path))


def _load_torch_bin(path):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{path}: reading pytorch_model.bin needs torch, which is not installed; "
                          "install torch or convert the checkpoint to model.safetensors") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {name: tensor.detach().to(torch.float32).numpy() for name, tensor in state.items()}


def read_state_dict(folder):
    """All tensors of the checkpoint as float32 numpy arrays, keyed by their HF names."""
    from safetensors.numpy import load_file

    folder = pathlib.Path(folder)
    single, index, torch_bin = (folder / "model.safetensors", folder / "model.safetensors.index.json",
                                folder / "pytorch_model.bin")
    if single.is_file():
        tensors = load_file(single)
    elif index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        tensors = {}
        for shard in shards:
            tensors.update(load_file(folder / shard))
    elif torch_bin.is_file():
        tensors = _load_torch_bin(torch_bin)
    else:
        raise FileNotFoundError(f"{folder}: no model.safetensors, model.safetensors.index.json or "
                                "pytorch_model.bin")
    return {name: np.asarray(value, dtype=np.float32) for name, value in tensors.items()}


def _fold_weight_norm(g, v):
    """torch weight_norm(dim=2): w = g * v / ||v||, the norm taken over every axis but the kernel axis."""
    return g * v / np.sqrt(np.sum(v * v, axis=(0, 1), keepdims=True))


def _conv_kernel(w):
    return np.transpose(w, (2, 1, 0))  # torch (out, in, k) -> flax (k, in, out)


def _parameter_map(model: Wav2Vec2Encoder):
    """HF name (without model prefix) -> (our nnx.Param, numpy transform)."""
    config = model.config
    identity, transpose = (lambda w: w), (lambda w: w.T)
    mapping = {}

    def linear(prefix, module):
        mapping[f"{prefix}.weight"] = (module.kernel, transpose)
        mapping[f"{prefix}.bias"] = (module.bias, identity)

    def norm(prefix, module):
        mapping[f"{prefix}.weight"] = (module.scale, identity)
        mapping[f"{prefix}.bias"] = (module.bias, identity)

    for i, layer in enumerate(model.conv_layers):
        prefix = f"feature_extractor.conv_layers.{i}"
        mapping[f"{prefix}.conv.weight"] = (layer.conv.kernel, _conv_kernel)
        if config.conv_bias:
            mapping[f"{prefix}.conv.bias"] = (layer.conv.bias, identity)
        if layer.norm is not None:
            norm(f"{prefix}.layer_norm", layer.norm)
    norm("feature_projection.layer_norm", model.feature_layer_norm)
    linear("feature_projection.projection", model.feature_projection)
    mapping["encoder.pos_conv_embed.conv.weight"] = (model.pos_conv_embed.conv.kernel, _conv_kernel)
    mapping["encoder.pos_conv_embed.conv.bias"] = (model.pos_conv_embed.conv.bias, identity)
    norm("encoder.layer_norm", model.encoder_layer_norm)
    for i, layer in enumerate(model.layers):
        prefix = f"encoder.layers.{i}"
        attention = layer.attention
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(f"{prefix}.attention.{name}", getattr(attention, name))
        if config.model_type == "wavlm":
            mapping[f"{prefix}.attention.gru_rel_pos_const"] = (attention.gru_rel_pos_const,
                                                                 lambda w: w.reshape(-1))
            linear(f"{prefix}.attention.gru_rel_pos_linear", attention.gru_rel_pos_linear)
            if attention.rel_attn_embed is not None:
                mapping[f"{prefix}.attention.rel_attn_embed.weight"] = (attention.rel_attn_embed.embedding, identity)
        norm(f"{prefix}.layer_norm", layer.layer_norm)
        norm(f"{prefix}.final_layer_norm", layer.final_layer_norm)
        linear(f"{prefix}.feed_forward.intermediate_dense", layer.feed_forward.intermediate_dense)
        linear(f"{prefix}.feed_forward.output_dense", layer.feed_forward.output_dense)
    return mapping


def _encoder_tensors(tensors, model_type, folder):
    """Strips the task-model prefix; returns the encoder's tensors and logs the task-head ones."""
    prefix = f"{model_type}."
    if any(name.startswith(prefix) for name in tensors):
        heads = sorted(name for name in tensors if not name.startswith(prefix))
        if heads:
            log.info("%s: not loading %d task-head tensors (%s ...)", folder, len(heads), ", ".join(heads[:4]))
        tensors = {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}
    tensors = dict(tensors)
    conv = "encoder.pos_conv_embed.conv"
    # Weight norm is saved as (g, v): new torch parametrizations or the old weight_g / weight_v names.
    for g_name, v_name in ((f"{conv}.parametrizations.weight.original0", f"{conv}.parametrizations.weight.original1"),
                           (f"{conv}.weight_g", f"{conv}.weight_v")):
        if g_name in tensors and v_name in tensors:
            tensors[f"{conv}.weight"] = _fold_weight_norm(tensors.pop(g_name), tensors.pop(v_name))
    for name in _IGNORED_ENCODER_KEYS:
        tensors.pop(name, None)
    return tensors


def read_do_normalize(folder):
    """`do_normalize` of the folder's `preprocessor_config.json`; False (the bare model) when it is absent."""
    path = pathlib.Path(folder) / "preprocessor_config.json"
    if not path.is_file():
        log.warning("%s: no preprocessor_config.json; the audio will not be normalised (pass "
                    "normalize_audio=True if the checkpoint was trained on normalised audio)", folder)
        return False
    try:
        return bool(json.loads(path.read_text()).get("do_normalize", True))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def load_encoder(folder, *, seed=0, matmul_dtype=None, normalize_audio=None):
    """Builds a `Wav2Vec2Encoder` from a local HF folder and loads every weight into it.

    matmul_dtype: see `Wav2Vec2Encoder` (None = float32 throughout). normalize_audio: None reads
    `do_normalize` from `preprocessor_config.json` (HF's default there is True; no file means False)."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: model folder does not exist")
    config = read_config(folder)
    if normalize_audio is None:
        normalize_audio = read_do_normalize(folder)
    model = Wav2Vec2Encoder(config, rngs=nnx.Rngs(seed), matmul_dtype=matmul_dtype, normalize_audio=normalize_audio)
    tensors = _encoder_tensors(read_state_dict(folder), config.model_type, folder)
    mapping = _parameter_map(model)
    missing = sorted(set(mapping) - set(tensors))
    unexpected = sorted(set(tensors) - set(mapping))
    if missing or unexpected:
        raise ValueError(f"{folder}: checkpoint does not match a {config.model_type} encoder of this config; "
                         f"missing weights: {missing or 'none'}; unexpected weights: {unexpected or 'none'}")
    for name, (param, transform) in mapping.items():
        value = transform(tensors[name])
        current = param.get_value()
        if value.shape != current.shape:
            raise ValueError(f"{folder}: weight {name} has shape {tensors[name].shape}, "
                             f"expected {current.shape} after conversion")
        param.set_value(jnp.asarray(value, dtype=current.dtype))
    log.info("loaded %s encoder (%d layers, width %d) from %s", config.model_type, config.num_hidden_layers,
             config.hidden_size, folder)
    return model
