"""The methods registry: what an anchoring method declares, in one place (docs/design.md, "Methods").

A method is a `Method`: whether it reads the unlabelled target stream, the per-segment cluster assigner
its loss needs (or none), its loss on the model output and batch, the default weight of that loss
(`config.loss.gamma`), and the names of the diagnostics its loss logs. The trainer, the configs, the demo
and the tests ask this registry; a new method is one module that calls `register` (it can live outside
this package and be imported with `launch/train.py --extension_modules=...`).

A cluster assigner is any object with `num_clusters`, `common` (a `(num_clusters,)` bool array: clusters
that provide anchors) and `assign_example(example, segments) -> (S,) int32` cluster ids (-1: none); the
input pipeline calls it per example (numpy), so `seg_cluster` arrives in the batch.
"""

import dataclasses
from typing import Any, Callable, Optional

from artser_jax import registry


@dataclasses.dataclass(frozen=True)
class LossInputs:
    """What a method's loss sees in one training step.

    `output` is the model's `SegmentModelOutput` over the source rows followed by the target rows;
    `source` and `target` are the batches (numpy-shaped dicts of arrays: `seg_mask`, `seg_cluster`, ...;
    the target has no `label`); `common` is the assigner's `(num_clusters,)` bool array (all False when
    the method has no assigner); `config` is the run's config.
    """
    output: Any
    source: dict
    target: dict
    common: Any
    config: Any

    @property
    def num_source(self):
        return self.source["audio"].shape[0]


@dataclasses.dataclass(frozen=True)
class Method:
    """One registered anchoring method.

    `loss(inputs: LossInputs) -> (value, metrics)` returns the unweighted loss (the trainer adds
    `config.loss.gamma * value` to the emotion loss) and a dict whose keys are exactly `diagnostics`.
    `cluster_assigner(config)` returns the assigner of the segments' clusters, or is None; it may set
    `config.segments` to the segmentation its clusters were made on (AG-CC does), before the input
    pipeline is built and `config.json` is written.
    `encoder_layers(config)` returns the indices of the encoder's selectable layers its loss reads from
    `output.hidden_states` (a frozen-feature store keeps them), or is None when it reads none.
    """
    name: str
    uses_target: bool
    default_gamma: float
    loss: Optional[Callable] = None
    cluster_assigner: Optional[Callable] = None
    diagnostics: tuple = ()
    encoder_layers: Optional[Callable] = None
    description: str = ""

    def __post_init__(self):
        if self.uses_target != (self.loss is not None):
            raise ValueError(f"method {self.name!r}: a method reads the target stream exactly when it has a loss")
        if self.default_gamma < 0:
            raise ValueError(f"method {self.name!r}: default_gamma must be >= 0, got {self.default_gamma}")


_REGISTRY = registry.Registry("method")
register = _REGISTRY.register
get = _REGISTRY.get
names = _REGISTRY.names
