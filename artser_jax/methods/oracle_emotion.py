"""DIAGNOSTIC, not a method: AG-CC's triplet loss with each segment's cluster set to its utterance's TRUE
emotion label, in both corpora, the target's labels included (issue 11, docs/controls.md).

It bounds what anchoring can do in a recipe: if perfect clusters do not move the target, the recipe (where
the loss acts, gamma, lambda, steps) is at fault, not the clusters. Because it reads the target's labels it
is only for generated corpora; the real-corpus configs refuse it (`artser_jax.configs.real_corpora`).
"""

import dataclasses

import numpy as np

from artser_jax.methods import agcc
from artser_jax.methods import base

NAME = "oracle_emotion"


@dataclasses.dataclass(frozen=True)
class TrueEmotionClusters:
    """Cluster assigner: every valid segment of an utterance gets the utterance's emotion label index."""
    num_clusters: int

    @property
    def common(self):
        return np.ones(self.num_clusters, bool)

    def assign_example(self, example, segments):
        emotion = int(example["emotion"])
        if not 0 <= emotion < self.num_clusters:
            raise ValueError(f"utterance {example.get('utterance_id')!r}: emotion index {emotion} is outside "
                             f"the {self.num_clusters} classes")
        mask = np.asarray(segments["seg_mask"], bool)
        return np.where(mask, emotion, -1).astype(np.int32)


def true_emotion_clusters(config):
    return TrueEmotionClusters(num_clusters=len(config.labels))


METHOD = base.register(base.Method(
    name=NAME, uses_target=True, default_gamma=0.5, loss=agcc.segment_triplet_loss,
    cluster_assigner=true_emotion_clusters, diagnostics=agcc.TRIPLET_DIAGNOSTICS,
    description="DIAGNOSTIC (reads target labels): triplet loss with true-emotion clusters; generated corpora only."))
