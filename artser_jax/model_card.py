"""`MODEL_CARD.md` beside an export: what the model was trained on, how, how well, what it was not
trained on, and the hashes of the data and encoder it came from."""

import pathlib

from artser_jax import sidecar

FILENAME = "MODEL_CARD.md"
PROTOCOL = ("UAR (unweighted average recall), WA (weighted accuracy) and macro-F1, in %, of the checkpoint "
            "with the best source-dev UAR. Source-dev is the source corpus's validation split (used for model "
            "selection); target-test is the target corpus's test split, never used for training or selection "
            "(target training audio is used without labels by the adaptation methods only).")


def _hash_files(paths):
    """`{path: sha256}` of the files that exist; missing ones are named as missing."""
    return {str(p): (sidecar.file_hash(p) if p.is_file() else "missing") for p in paths}


def data_hashes(config):
    """SHA-256 of the prepared dataset files (TFDS records and dataset info) of both corpora and of the
    gesture artifact."""
    files = []
    for corpus in ("source", "target"):
        config_dir = pathlib.Path(config.data_dir) / config[corpus].tfds_name  # holds <version>/ folders
        for version_dir in sorted(config_dir.iterdir()) if config_dir.is_dir() else []:
            files += sorted(f for f in version_dir.iterdir() if f.is_file())
    if config.get("gestures_path"):
        gestures = pathlib.Path(config.gestures_path)
        files += sorted(gestures.iterdir()) if gestures.is_dir() else [gestures]
    return _hash_files(files)


def encoder_hashes(config):
    if not config.model.pretrained_dir:
        return {}
    folder = pathlib.Path(config.model.pretrained_dir)
    return _hash_files(sorted(f for f in folder.iterdir() if f.is_file()) if folder.is_dir() else [folder])


def _metrics_table(final_metrics):
    if not final_metrics:
        return ["Not recorded: the export was written without the final evaluation's metrics "
                "(see `final/*/report.json` in the run's workdir)."]
    names = sorted({key.split("/")[0] for key in final_metrics})
    lines = ["| evaluation | UAR | WA | macro-F1 |", "| --- | --- | --- | --- |"]
    for name in names:
        values = [final_metrics.get(f"{name}/{m}") for m in ("uar", "wa", "macro_f1")]
        lines.append(f"| {name} | " + " | ".join("" if v is None else f"{float(v):.2f}" for v in values) + " |")
    return lines


def render(metadata, config, final_metrics=None, best_step=None):
    """The model card's Markdown text."""
    source, target = config.source, config.target
    splits = {name: f"{config[spec.corpus].corpus} `{spec.split}`" for name, spec in config.evals.items()}
    portable = metadata.get("portable") or {}
    encoder = metadata["encoder"] + (f" (pretrained from `{config.model.pretrained_dir}`)"
                                     if config.model.pretrained_dir else " (trained from scratch)")
    lines = [
        f"# Model card: {metadata['method']} speech emotion classifier ({', '.join(metadata['labels'])})",
        "",
        "## Training data",
        f"- Source corpus (labelled): {source.corpus} (`{source.tfds_name}`), split `{source.train_split}`.",
        f"- Target corpus (unlabelled adaptation audio where the method uses it): {target.corpus} "
        f"(`{target.tfds_name}`), split `{target.train_split}`.",
        "- Evaluations: " + ", ".join(f"{name} = {split}" for name, split in splits.items()) + ".",
        "",
        "## Method and configuration",
        f"- Method: `{metadata['method']}`; encoder: {encoder}; {config.total_steps} steps, seed {config.seed}.",
        f"- Input: mono audio at {metadata['sample_rate']} Hz; training crop {metadata['max_seconds']} s; "
        f"segments: `{metadata['segments']['method']}` (at most {metadata['segments']['max_segments']}).",
        "- The full configuration is `config` in `model.json`.",
        "",
        "## Metrics",
        f"Protocol: {PROTOCOL}" + (f" Step {best_step}." if best_step is not None else ""),
        "",
        *_metrics_table(final_metrics),
        "",
        "## Limitations",
        f"- Trained on {source.corpus} (and unlabelled {target.corpus} audio) only: acted, read or improvised "
        "English speech recorded in studio conditions. Other languages, spontaneous conversation, children's "
        "or elderly voices, telephone or far-field audio, music and overlapping speakers were not in training.",
        f"- Four categories only ({', '.join(metadata['labels'])}); other emotions are forced into one of them.",
        "- Audio only at prediction: the mouth-articulation (video) signal shapes training, it is not an input.",
        f"- Each prediction window covers {metadata['max_seconds']} s (the training crop); longer recordings are "
        "scored window by window and averaged. Audio without voiced speech is refused, not labelled.",
        f"- Audio shorter than one encoder frame ({1000 * metadata['min_audio_seconds']:.0f} ms) is refused.",
        "",
        "## Portable forms",
        f"- StableHLO (`jax.export`): {portable.get('stablehlo') or 'not written: ' + str(portable.get('stablehlo_error'))}"
        + (f"; max abs difference to the Flax model {portable['stablehlo_max_abs_diff']:.2e}"
           if portable.get("stablehlo") else ""),
        f"- ONNX (`jax2onnx`, opset {portable.get('onnx_opset')}): {portable.get('onnx') or 'not written: ' + str(portable.get('onnx_error'))}"
        + (f"; max abs difference to the Flax model {portable['onnx_max_abs_diff']:.2e}" if portable.get("onnx") else ""),
        "",
        "## Hashes (SHA-256)",
        f"- Parameters: `{metadata['integrity']['parameters_sha256']}`",
        *(f"- {name}: `{digest}`" for name, digest in metadata["integrity"]["files_sha256"].items()),
        "- Data:",
        *(f"  - `{path}`: `{digest}`" for path, digest in data_hashes(config).items()),
        "- Encoder: " + ("trained from scratch, no pretrained files" if not config.model.pretrained_dir else ""),
        *(f"  - `{path}`: `{digest}`" for path, digest in encoder_hashes(config).items()),
    ]
    return "\n".join(lines) + "\n"


def write(directory, metadata, config, final_metrics=None, best_step=None):
    path = pathlib.Path(directory) / FILENAME
    path.write_text(render(metadata, config, final_metrics, best_step))
    return path
