"""Training configs as a package: `common` holds every default, `demo` and `real_corpora` the two
experiments. The files in the repository's `configs/` folder are the thin entry points that
`--config=configs/<name>.py:<args>` loads."""
