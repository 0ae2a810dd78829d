"""Phoneme-anchored baseline (docs/method.md 2.5): AG-CC's triplet loss with phone identities as clusters
(`config.loss.anchor_phones`, ARPAbet vowels by default); needs phone segments, uses no video."""

from artser_jax.methods import agcc
from artser_jax.methods import base


def phone_clusters(config):
    from artser_jax.gestures import cluster_space  # pylint: disable=g-import-not-at-top

    if config.segments.method != "phones":
        raise ValueError("method 'phoneme_anchored' needs config.segments.method='phones'")
    return cluster_space.phone_gesture_model(config.loss.anchor_phones)


METHOD = base.register(base.Method(
    name="phoneme_anchored", uses_target=True, default_gamma=0.5, loss=agcc.segment_triplet_loss,
    cluster_assigner=phone_clusters, diagnostics=agcc.TRIPLET_DIAGNOSTICS,
    description="Triplet loss over phone-identity clusters (the paper's phoneme-anchored baseline)."))
