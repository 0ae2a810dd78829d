"""Generated audio-visual demo corpora in the on-disk layouts of CREMA-D and MSP-IMPROV (docs/data.md section 3)."""

from artser_jax.demo_corpora.generate import generate_demo_corpora

__all__ = ["generate_demo_corpora"]
