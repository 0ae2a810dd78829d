"""Anchoring methods: the registry (`base`) and the built-in methods, one module each."""

from artser_jax.methods.base import LossInputs, Method, get, names, register
from artser_jax.methods import agcc, layer_anchored, phoneme_anchored, source_only  # registers them
from artser_jax.methods import oracle_emotion  # a diagnostic (reads target labels): generated corpora only

# Methods that read the target corpus's labels: diagnostics on generated corpora, refused on real ones.
DIAGNOSTIC_METHODS = (oracle_emotion.NAME,)

__all__ = ["DIAGNOSTIC_METHODS", "LossInputs", "Method", "get", "names", "register"]
