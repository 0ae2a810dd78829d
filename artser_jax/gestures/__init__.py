"""Articulatory gestures (docs/method.md): mouth descriptors per segment (`descriptors`), the shared
cluster space of a source and a target corpus with its artifact (`cluster_space`), and its fitting
(`fitting`)."""
