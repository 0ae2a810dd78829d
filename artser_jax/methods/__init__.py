"""Anchoring methods: the registry (`base`) and the built-in methods, one module each."""

from artser_jax.methods.base import LossInputs, Method, get, names, register
from artser_jax.methods import agcc, layer_anchored, phoneme_anchored, source_only  # registers them

__all__ = ["LossInputs", "Method", "get", "names", "register"]
