"""The training objective and the jitted steps: L_ER on the source plus gamma times the method's loss.

The method comes from the methods registry (`artser_jax.methods`); nothing here knows a method by name.
"""

import jax.numpy as jnp
import optax
from flax import nnx

from artser_jax import losses
from artser_jax import methods
from artser_jax.models import segment_model

MODEL_INPUTS = ("audio", "audio_mask", "seg_start", "seg_end", "seg_mask")


def _model_inputs(batch):
    return tuple(batch[k] for k in MODEL_INPUTS)


def joined_model_inputs(source, target):
    """The model's inputs for source and target rows together, source rows first."""
    return [jnp.concatenate([source[k], target[k]]) for k in MODEL_INPUTS]


def reads_target(config):
    """Whether the step runs the model on the target rows: the method uses them and its weight is > 0."""
    return methods.get(config.method).uses_target and config.loss.gamma > 0


def compute_losses(model, batch, config, common, class_weights):
    """(total loss, metrics) of one training batch `{'source': ..., 'target': ...}`."""
    source, target = batch["source"], batch["target"]
    method = methods.get(config.method)
    use_target = reads_target(config)
    if use_target:
        # One forward over source and target rows together (the same dropout stream for both).
        out = model(*joined_model_inputs(source, target), deterministic=False)
        logits = out.logits[:source["audio"].shape[0]]
    else:
        out = model(*_model_inputs(source), deterministic=False)
        logits = out.logits
    l_er = losses.cross_entropy_loss(logits, source["label"], class_weights=class_weights)
    metrics = {"loss_er": l_er,
               "source_accuracy": jnp.mean(jnp.argmax(logits, -1) == source["label"])}
    total = l_er
    if use_target:
        value, diagnostics = method.loss(methods.LossInputs(output=out, source=source, target=target,
                                                            common=common, config=config))
        if set(diagnostics) != set(method.diagnostics):
            raise ValueError(f"method {method.name!r} declared diagnostics {sorted(method.diagnostics)} but its "
                             f"loss returned {sorted(diagnostics)}")
        metrics.update(diagnostics)
        total = total + config.loss.gamma * value
    metrics["loss"] = total
    return total, metrics


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
