"""artser_jax: cross-corpus speech emotion recognition anchored on mouth articulation (AG-CC)."""
