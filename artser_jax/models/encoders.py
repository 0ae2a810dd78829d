"""The encoder registry: the audio front ends a `SegmentEmotionModel` can run on (docs/design.md).

An entry says how to build the encoder from `config.model`, whether its weights come from a pretrained
folder (`config.model.pretrained_dir`), whether it is frozen unless the config says otherwise, and which
files of that folder an export copies, so that prediction rebuilds the architecture without the original
folder. A new encoder is one module that calls `register` (it can live outside this package and be
imported with `launch/train.py --extension_modules=...`).

Every encoder module has `output_dim`, `num_hidden_states`, `frame_hop_seconds`, `frame_window_seconds`
and `__call__(audio, audio_mask, deterministic=...)` returning an object with `frames`, `hidden_states`
and `frame_mask` (see `logmel.LogMelEncoder`).
"""

import dataclasses
import pathlib
from typing import Callable

from artser_jax import registry

from artser_jax.models import features
from artser_jax.models import hf_loader
from artser_jax.models.logmel import LogMelConfig, LogMelEncoder
from artser_jax.models.wav2vec2 import MODEL_TYPES, Wav2Vec2Encoder


@dataclasses.dataclass(frozen=True)
class Encoder:
    """One registered encoder.

    `build(model_config, rngs, load_weights)` returns the encoder module; with `load_weights=False` a
    pretrained encoder is built from its folder's config files only (its parameters are restored from an
    export afterwards).
    """
    name: str
    build: Callable
    pretrained: bool = False
    frozen_by_default: bool = False
    export_files: tuple = ()


_REGISTRY = registry.Registry("encoder")
register = _REGISTRY.register
get = _REGISTRY.get
names = _REGISTRY.names


def is_frozen(model_config):
    """Whether the config's encoder is frozen: `model_config.freeze_encoder` when set, else its default."""
    if model_config.freeze_encoder is None:
        return get(model_config.encoder).frozen_by_default
    return bool(model_config.freeze_encoder)


def _build_logmel(model_config, rngs, load_weights):
    del load_weights  # trained from scratch: there are no weights to load
    return LogMelEncoder(LogMelConfig(**{**model_config.logmel.to_dict(), "dropout": model_config.dropout}),
                         rngs=rngs)


def _hugging_face_builder(model_type):
    """A builder of the wav2vec2-family encoder `model_type` from a local Hugging Face folder."""

    def build(model_config, rngs, load_weights):
        folder = model_config.pretrained_dir
        if not folder:
            raise ValueError(f"encoder {model_type!r} needs --config.model.pretrained_dir (a local Hugging "
                             f"Face folder with config.json and model weights); or use encoder=logmel")
        if load_weights:
            encoder = hf_loader.load_encoder(folder)
        else:
            encoder = Wav2Vec2Encoder(hf_loader.read_config(folder), rngs=rngs,
                                      normalize_audio=hf_loader.read_do_normalize(folder))
        if encoder.config.model_type != model_type:
            raise ValueError(f"{pathlib.Path(folder)}: holds a {encoder.config.model_type} model, the config "
                             f"asks for {model_type}")
        return encoder

    return build


HUGGING_FACE_FILES = ("config.json", "preprocessor_config.json")

register(Encoder("logmel", _build_logmel))
# The frozen-feature path (models/features.py): selected by the trainer, not by configs.
register(Encoder(features.ENCODER_NAME, features.build, frozen_by_default=True))
for _model_type in MODEL_TYPES:
    register(Encoder(_model_type, _hugging_face_builder(_model_type), pretrained=True, frozen_by_default=True,
                     export_files=HUGGING_FACE_FILES))
