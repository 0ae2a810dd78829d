r"""Measures how separable emotion is in generated demo corpora, within and across corpora.

    python launch/measure_demo_separability.py --corpora_dir=/tmp/demo_corpora [--out=results.json]

Simple acoustic statistics + logistic regression; within a corpus speaker-independent (GroupKFold by
speaker), across corpora trained on one and tested on the other. Prints UARs (%) as JSON. See
artser_jax/demo_corpora/separability.py for the exact features and protocol.
"""

import json
import logging
import pathlib

from absl import app, flags

from artser_jax.demo_corpora import separability

_CORPORA_DIR = flags.DEFINE_string("corpora_dir", None, "Folder holding crema_d/ and msp_improv/.", required=True)
_OUT = flags.DEFINE_string("out", None, "Optional JSON file for the results.")
_MSP_LABELS = flags.DEFINE_enum("msp_label_source", "consensus", ["consensus", "scenario"],
                                "MSP-IMPROV labels: perceived consensus (builders' default) or scenario.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger().setLevel(logging.INFO)
    results = separability.measure(_CORPORA_DIR.value, _MSP_LABELS.value)
    text = json.dumps(results, indent=2)
    print(text)
    if _OUT.value:
        pathlib.Path(_OUT.value).write_text(text + "\n")


if __name__ == "__main__":
    app.run(main)
