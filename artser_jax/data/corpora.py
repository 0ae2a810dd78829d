"""The corpus registry: the audio-visual corpora a run can take as source or target (docs/design.md).

An entry names the TFDS builder that reads the corpus as it ships (`artser_jax.data.builders`), the
builder config holding the 4-class task shared by every corpus, and the split names. Adding a corpus is
one builder module (a subclass of `builders.AudioVisualBuilder`, like `crema_d_builder.py`) and one
`register` call; configs, `launch/prepare_data.py` and the demo then accept its name.
"""

import dataclasses

from artser_jax import registry
from artser_jax.data import crema_d_builder
from artser_jax.data import msp_improv_builder


@dataclasses.dataclass(frozen=True)
class Corpus:
    name: str  # what configs and launch flags call it, e.g. "crema_d"
    builder: type  # the TFDS builder class
    four_class_config: str = "emotion4"  # the builder config with the classes ANG, HAP, NEU, SAD
    train_split: str = "train"
    dev_split: str = "validation"
    test_split: str = "test"

    @property
    def tfds_name(self):
        """`name/config` of the 4-class dataset, as `tfds.data_source` takes it."""
        return f"{self.builder.name}/{self.four_class_config}"


_REGISTRY = registry.Registry("corpus")
register = _REGISTRY.register
get = _REGISTRY.get
names = _REGISTRY.names


register(Corpus("crema_d", crema_d_builder.CremaDAv))
register(Corpus("msp_improv", msp_improv_builder.MspImprovAv))
