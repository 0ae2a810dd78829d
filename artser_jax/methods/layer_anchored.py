"""Layer-anchored baseline (docs/method.md 2.5): Deep CORAL between source and target frames of the encoder
layers `config.loss.coral_layers`; no clusters."""

import jax.numpy as jnp

from artser_jax import losses
from artser_jax.methods import base


def layer_coral_objective(inputs):
    out, layers = inputs.output, tuple(inputs.config.loss.coral_layers)
    if max(layers) >= len(out.hidden_states):
        raise ValueError(f"config.loss.coral_layers {layers} name a layer the encoder lacks: it has "
                         f"{len(out.hidden_states)} selectable layers")
    is_source_row = jnp.arange(out.logits.shape[0]) < inputs.num_source
    value = losses.layer_coral_loss(out.hidden_states, out.frame_mask, is_source_row, layers)
    return value, {"loss_coral": value}


METHOD = base.register(base.Method(
    name="layer_anchored", uses_target=True, default_gamma=0.5, loss=layer_coral_objective,
    diagnostics=("loss_coral",), encoder_layers=lambda config: tuple(config.loss.coral_layers),
    description="CORAL alignment of encoder layers between the corpora (the paper's layer-anchored baseline)."))
