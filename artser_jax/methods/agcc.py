"""AG-CC (docs/method.md 2.4): a soft-weighted triplet loss that pulls target segments towards source
segments of the same mouth-gesture cluster (the fitted `GestureModel` of `config.gestures_path`)."""

import logging

import jax.numpy as jnp

from artser_jax import losses
from artser_jax.methods import base

TRIPLET_DIAGNOSTICS = ("loss_ag", "anchors_per_step")


def segment_triplet_loss(inputs):
    """The soft-weighted triplet loss over every segment of the step, source and target pooled, with
    target segments of the anchoring clusters as anchors; also the number of anchors."""
    source, target, config = inputs.source, inputs.target, inputs.config
    embeddings = inputs.output.segment_embeddings
    cluster = jnp.concatenate([source["seg_cluster"], target["seg_cluster"]])
    is_source = jnp.concatenate([jnp.ones_like(source["seg_mask"]), jnp.zeros_like(target["seg_mask"])])
    valid = jnp.concatenate([source["seg_mask"], target["seg_mask"]]) & (cluster >= 0)
    common = inputs.common
    anchor_common = common if config.loss.anchor_clusters == "common" else jnp.ones_like(common)
    flat = (cluster.reshape(-1), is_source.reshape(-1), valid.reshape(-1), anchor_common)
    value = losses.soft_weighted_triplet_loss(
        embeddings.reshape(-1, embeddings.shape[-1]), *flat, lam=config.loss.lam,
        margin=config.loss.margin, mining=config.loss.mining, form=config.loss.form)
    anchors, _, _ = losses.triplet_anchor_sets(*flat)
    return value, {"loss_ag": value, "anchors_per_step": jnp.sum(anchors)}


SEGMENT_FIELDS = ("min_video_frames", "window_seconds", "hop_seconds")


def load_gesture_clusters(config):
    """The fitted `GestureModel` of `config.gestures_path`. Training segments the audio as the model's
    clusters were fitted: `config.segments` takes the artifact's segment method and options, so the two
    cannot disagree (a differing config is logged and overridden)."""
    from artser_jax.gestures import cluster_space  # pylint: disable=g-import-not-at-top

    if not config.gestures_path:
        raise ValueError("method 'agcc' needs --config.gestures_path (the output of launch/fit_gestures.py)")
    model = cluster_space.load_gesture_model(config.gestures_path)
    fitted = {"method": model.config.segment_method,
              **{field: getattr(model.config, field) for field in SEGMENT_FIELDS}}
    configured = {field: config.segments[field] for field in fitted}
    if configured != fitted:
        logging.warning("Segments taken from the gesture model %s: %s (the config had %s)", config.gestures_path,
                        fitted, configured)
        for field, value in fitted.items():
            config.segments[field] = value
    return model


METHOD = base.register(base.Method(
    name="agcc", uses_target=True, default_gamma=0.5, loss=segment_triplet_loss,
    cluster_assigner=load_gesture_clusters, diagnostics=TRIPLET_DIAGNOSTICS,
    description="Articulatory-gesture anchoring: triplet loss over mouth-gesture clusters of both corpora."))
