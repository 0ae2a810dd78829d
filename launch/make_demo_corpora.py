r"""Generates the demo corpora (CREMA-D-like and MSP-IMPROV-like) in their real on-disk layouts.

    python launch/make_demo_corpora.py --out_dir=/tmp/demo_corpora --size=demo --seed=0 --num_workers=2

Writes DIR/crema_d/ and DIR/msp_improv/; rerunning skips finished clips (resumable), and a finished
corpus is skipped as a whole. See docs/demo_corpora.md for the frozen generator parameters.
"""

import json
import logging

from absl import app, flags

from artser_jax.demo_corpora import generate_demo_corpora

_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder to write crema_d/ and msp_improv/ into.", required=True)
_SIZE = flags.DEFINE_enum("size", "demo", ["tiny", "demo", "controls"],
                          "tiny: unit tests; demo: the README demo; controls: issue 11's experiment.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every random choice of the generator.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 1, "Processes rendering clips in parallel.")
_PARAMETERS_VERSION = flags.DEFINE_integer("parameters_version", 1, "Generator parameters version (1 or 2).")
_PREMISE_STRENGTH = flags.DEFINE_float("premise_strength", None,
                                       "Version 2: how strongly emotion shows in the mouth (0 = not at all).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger().setLevel(logging.INFO)
    summary = generate_demo_corpora(_OUT_DIR.value, _SIZE.value, _SEED.value, _NUM_WORKERS.value,
                                    parameters_version=_PARAMETERS_VERSION.value,
                                    premise_strength=_PREMISE_STRENGTH.value)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    app.run(main)
