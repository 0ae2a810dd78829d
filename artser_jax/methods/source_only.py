"""Source-only: the emotion loss on the labelled source corpus alone (the baseline every method beats)."""

from artser_jax.methods import base

METHOD = base.register(base.Method(
    name="source_only", uses_target=False, default_gamma=0.0,
    description="Emotion loss on the source corpus only; the target stream is not read."))
