r"""Classifies the emotion of audio files with an exported model (audio only).

    python launch/predict.py --model=RUN/export --wav=FILE.wav
    python launch/predict.py --model=RUN/export --dir=FOLDER --output=predictions.csv
    python launch/predict.py --model=RUN/export --csv=LIST.csv --output=predictions.json

Prints JSON (or writes --output, .json or .csv): per file the label and the class probabilities, or an
error for a file that is not usable audio; the batch goes on past such files. Exits with status 1 when
any file failed.
"""

import sys

from absl import app
from absl import flags
from absl import logging
import tqdm

from artser_jax import extensions
from artser_jax import library_logs

_MODEL = flags.DEFINE_string("model", None, "Exported model directory (<workdir>/export).", required=True)
_WAV = flags.DEFINE_string("wav", None, "One audio file.")
_DIR = flags.DEFINE_string("dir", None, "A folder of audio files (searched recursively).")
_CSV = flags.DEFINE_string("csv", None, "A CSV listing audio files (column `path`, else the first column).")
_OUTPUT = flags.DEFINE_string("output", None, "Output file, .json or .csv (default: JSON on stdout).")
_EXTENSION_MODULES = extensions.define_flag()


def main(argv):
    del argv
    from artser_jax import predict  # pylint: disable=g-import-not-at-top

    library_logs.quiet_library_logs()
    try:
        files = predict.list_inputs(_WAV.value, _DIR.value, _CSV.value)
    except (ValueError, FileNotFoundError) as error:
        raise app.UsageError(str(error))
    predictor = predict.Predictor(_MODEL.value)
    results = [predictor.predict_file(path) for path in tqdm.tqdm(files, desc="predict", unit="file",
                                                                  disable=len(files) < 2)]
    predict.write_results(results, predictor.labels, _OUTPUT.value)
    failed = [r for r in results if "error" in r]
    if failed:
        logging.error("%d of %d files failed", len(failed), len(results))
        sys.exit(1)


if __name__ == "__main__":
    extensions.import_from_argv(sys.argv)
    app.run(main)
