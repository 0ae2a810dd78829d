r"""AG-CC, CREMA-D (labelled source) -> MSP-IMPROV (unlabelled target), real corpora.

Prepare both datasets and fit the gesture model first (README, "Real corpora"), then:

  python launch/train.py --config=configs/crema_to_msp.py:method=agcc \
      --config.data_dir=$DATA --config.gestures_path=$DATA/gestures_crema_msp \
      --workdir=runs/crema_to_msp_agcc

Arguments (`:key=value,...`): method = agcc | source_only | phoneme_anchored | layer_anchored;
encoder = logmel | wav2vec2 | wavlm (wav2vec2/wavlm also need --config.model.pretrained_dir).

Hardware: one accelerator (GPU/TPU) or a pod slice; the batch is sharded over all devices.
Runtime and expected result: not measured — the real corpora are not available to the authors of this
config. It has only been checked to parse; the demo config is what was actually run (see configs/demo.py).
"""

import os
import sys

# Config files are loaded by path, so the shared defaults next to them are imported by path too.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  pylint: disable=g-import-not-at-top


def get_config(arg=None):
    return common.real_corpora_config(arg, source="crema_d", target="msp_improv")
