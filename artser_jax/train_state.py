"""The model, its optimizer and the train state, built from a config (docs/design.md, "Trainer").

`build_model` turns `config.model` into a `SegmentEmotionModel` (the encoder comes from the encoder
registry); `build_optimizer` is AdamW with warm-up and cosine decay; `create_train_state` creates the
(graphdef, state) of model and optimizer replicated on the mesh. A run on stored frozen features
(`artser_jax/feature_store.py`) trains a model whose encoder is the `stored_features` entry;
`audio_model_state` turns it back into the audio model for the export, and `frozen_encoder_record` is
what its checkpoints record in place of the frozen weights.
"""

import jax
import optax
from flax import nnx

from artser_jax import feature_store
from artser_jax import sharding
from artser_jax.models import encoders
from artser_jax.models import segment_model


def layer_selection(model_config):
    """The `SegmentEmotionModel.layer_selection` of `config.model`."""
    if model_config.weighted_layer_sum:
        return "weighted"
    if model_config.encoder_layer == -1:
        return "last"
    return model_config.encoder_layer


def build_model(config, num_classes, rngs, load_weights=True):
    """The SegmentEmotionModel described by `config.model`.

    `load_weights=False` builds a pretrained encoder's architecture from its folder's config files
    only, for restoring exported parameters into it.
    """
    model_config = config.model
    encoder = encoders.get(model_config.encoder).build(model_config, rngs, load_weights)
    return segment_model.SegmentEmotionModel(
        encoder, num_classes=num_classes, width=model_config.transformer_width,
        num_layers=model_config.transformer_layers, num_heads=model_config.transformer_heads,
        dropout=model_config.dropout, classifier_hidden=model_config.classifier_hidden,
        layer_selection=layer_selection(model_config), frozen_encoder=encoders.is_frozen(model_config),
        rngs=rngs)


def _parameter_group(path, _):
    return "encoder" if any(getattr(key, "key", None) == "encoder" for key in path) else "rest"


def build_optimizer(config):
    """AdamW with linear warm-up and cosine decay, gradient clipping by global norm. A fine-tuned
    pretrained encoder gets its own (lower) peak learning rate."""

    def adamw(peak):
        schedule = optax.warmup_cosine_decay_schedule(
            init_value=0.0, peak_value=peak,
            warmup_steps=min(config.optimizer.warmup_steps, max(config.total_steps - 1, 1)),
            decay_steps=max(config.total_steps, 2), end_value=0.0)
        return optax.adamw(schedule, weight_decay=config.optimizer.weight_decay)

    fine_tuned = encoders.get(config.model.encoder).pretrained and not encoders.is_frozen(config.model)
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


_ENCODER_PATH = (0, "encoder")  # the encoder inside the (model, optimizer) state


def _holds_frozen_weights(model_config):
    return encoders.get(model_config.encoder).pretrained and encoders.is_frozen(model_config)


def to_checkpoint(state, config):
    """What a checkpoint stores of the (model, optimizer) `state` of `config`: PRNG keys as raw data, and
    no frozen pretrained encoder (its weights are read again from `config.model.pretrained_dir`, whose
    files' hash the checkpoint records: `frozen_encoder_record`)."""
    if _holds_frozen_weights(config.model):
        state = nnx.State.from_flat_path([(path, value) for path, value in state.flat_state()
                                          if path[:2] != _ENCODER_PATH])
    return keys_to_data(state)


def from_checkpoint(restored, state, config):
    """The full state from a checkpoint's `restored` part (`to_checkpoint`), the rest taken from `state`."""
    if _holds_frozen_weights(config.model):
        saved = dict(restored.flat_state())
        restored = nnx.State.from_flat_path([(path, saved[path] if path[:2] != _ENCODER_PATH else keys_to_data(value))
                                             for path, value in state.flat_state()])
    return keys_from_data(restored, state)


def create_train_state(config, num_classes, mesh):
    """(graphdef, state) of the model and its optimizer, with the state created replicated on `mesh`."""
    tx = build_optimizer(config)

    def model_and_optimizer():
        model = build_model(config, num_classes, nnx.Rngs(params=config.seed, dropout=config.seed + 1))
        return model, nnx.Optimizer(model, tx, wrt=segment_model.trainable_filter(model))

    replicated = sharding.replicated_sharding(mesh)
    if encoders.get(config.model.encoder).pretrained:
        # Pretrained weights are read from disk on the host; built inside jit they would be baked into
        # the compiled program as constants (hundreds of MB) and read twice.
        graphdef, state = nnx.split(model_and_optimizer())
        return graphdef, jax.device_put(state, replicated)
    graphdef, _ = nnx.split(nnx.eval_shape(model_and_optimizer))
    state = jax.jit(lambda: nnx.state(model_and_optimizer()), out_shardings=replicated)()
    return graphdef, state


def frozen_encoder_record(config):
    """What a checkpoint records of a frozen pretrained encoder (name, folder, SHA-256 of its files), or
    None when the encoder is trained or has no pretrained folder."""
    if not (encoders.get(config.model.encoder).pretrained and encoders.is_frozen(config.model)):
        return None
    return {"encoder": config.model.encoder, "pretrained_dir": str(config.model.pretrained_dir),
            "sha256": feature_store.encoder_folder_sha256(config.model.pretrained_dir)}


def audio_model_state(config, num_classes, graphdef, state):
    """(graphdef, state) of `config`'s audio model (its pretrained encoder read from
    `config.model.pretrained_dir`) holding every trained parameter of the stored-features model
    (graphdef, state), for an export that runs on audio."""
    feature_model, _ = nnx.merge(graphdef, state)
    trained = nnx.to_pure_dict(nnx.state(feature_model, nnx.Param))
    model = build_model(config, num_classes, nnx.Rngs(params=config.seed, dropout=config.seed + 1))
    params = nnx.state(model, nnx.Param)
    merged = nnx.to_pure_dict(params)
    if "encoder" in trained or set(trained) - set(merged):
        raise ValueError(f"the stored-features model has parameters {sorted(set(trained) - set(merged))} "
                         f"that the audio model lacks")
    merged.update(jax.device_get(trained))
    nnx.replace_by_pure_dict(params, merged)
    nnx.update(model, params)
    return nnx.split((model, None))
