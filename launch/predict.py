r"""Classifies the emotion of audio files with an exported model (audio only).

    python launch/predict.py --model=RUN/export --wav=FILE.wav
    python launch/predict.py --model=RUN/export --dir=FOLDER --output=predictions.csv
    python launch/predict.py --model=RUN/export --csv=LIST.csv --output=predictions.json --backend=onnx

Prints JSON (or writes --output, .json or .csv; a CSV's per-window timeline goes to
<output stem>.timeline.csv): per file the label and the class probabilities aggregated over windows of
the training crop length, and the timeline of windows (start, end, label, probabilities); or an error for
a file that is not usable audio, is shorter than one encoder frame or holds no speech. The batch goes on
past such files. `--max_seconds=S` scores only the first S seconds as one crop (no timeline). Exits with
status 1 when any file failed.

`--backend=onnx` runs the export's model.onnx in onnxruntime and imports no JAX (nor absl): it needs only
numpy, soundfile, soxr and onnxruntime (tqdm, when installed, draws the progress bar).
"""

import argparse
import logging
import sys

from artser_jax import predict


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Exported model directory (<workdir>/export).")
    parser.add_argument("--wav", help="One audio file.")
    parser.add_argument("--dir", help="A folder of audio files (searched recursively).")
    parser.add_argument("--csv", help="A CSV listing audio files (column `path`, else the first column).")
    parser.add_argument("--output", help="Output file, .json or .csv (default: JSON on stdout).")
    parser.add_argument("--backend", choices=sorted(predict.BACKENDS), default="jax",
                        help="jax: the Flax model; onnx: model.onnx in onnxruntime (no JAX needed).")
    parser.add_argument("--max_seconds", type=float, default=None,
                        help="Score only the first MAX_SECONDS seconds as one crop (no timeline).")
    parser.add_argument("--hop_seconds", type=float, default=None,
                        help="Hop between timeline windows (default: half the training crop).")
    parser.add_argument("--extension_modules", default="",
                        help="Modules registering your own encoders (names or .py files), jax backend only.")
    return parser.parse_args(argv)


def _progress(files):
    """A progress bar over the files when there are several (tqdm; a minimal ONNX install may lack it)."""
    if len(files) < 2:
        return files
    try:
        import tqdm  # pylint: disable=g-import-not-at-top
    except ImportError:
        logging.warning("predicting %d files (install tqdm for a progress bar)", len(files))
        return files
    return tqdm.tqdm(files, desc="predict", unit="file")


def main(argv):
    args = parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(message)s", level=logging.WARNING)
    if args.extension_modules:
        if args.backend != "jax":
            sys.exit("--extension_modules needs --backend=jax (the ONNX model holds its encoder already)")
        from artser_jax import extensions  # pylint: disable=g-import-not-at-top  (imports absl)

        extensions.import_modules([name for name in args.extension_modules.split(",") if name])
    if args.backend == "jax":
        from artser_jax import library_logs  # pylint: disable=g-import-not-at-top

        library_logs.quiet_library_logs()
    try:
        files, skipped = predict.list_inputs(args.wav, args.dir, args.csv)
        predictor = predict.Predictor(args.model, backend=args.backend, max_seconds=args.max_seconds,
                                      hop_seconds=args.hop_seconds)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    if skipped:
        logging.warning("skipped %d file(s) by extension (audio is %s): %s", len(skipped),
                        ", ".join(predict.AUDIO_SUFFIXES), ", ".join(str(p) for p in skipped))
    results = [predictor.predict_file(path) for path in _progress(files)]
    predict.write_results(results, predictor.labels, args.output)
    failed = [r for r in results if "error" in r]
    if failed:
        logging.error("%d of %d files failed", len(failed), len(results))
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
