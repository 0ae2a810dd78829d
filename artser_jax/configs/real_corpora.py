"""The real-corpora experiment (CREMA-D and MSP-IMPROV as they ship), either direction.

`configs/real_corpora.py` is its entry point (with the commands); `configs/crema_to_msp.py` and
`configs/msp_to_crema.py` fix the direction.
"""

from artser_jax import methods
from artser_jax.configs import common


def get_config(arg=None, direction=None):
    """`arg` selects `method`, `encoder` and, unless the entry point fixes `direction`, the direction
    (`direction=msp_to_crema,method=agcc,encoder=logmel`)."""
    defaults = dict(method="agcc", encoder="wav2vec2")
    if direction is None:
        defaults["direction"] = "crema_to_msp"
    args = common.parse_arg(arg, **defaults)
    if args.method in methods.DIAGNOSTIC_METHODS:
        raise ValueError(f"method {args.method!r} is a diagnostic that reads the target corpus's labels; it is "
                         "for generated corpora only (configs/controls.py), never for the real corpora")
    source, target = common.parse_direction(direction or args.direction)
    config = common.base_config(source=source, target=target, method=args.method)
    config.model.encoder = args.encoder
    # The paper's phone segments where launch/align.py aligned a clip, windows where it could not (e.g. an
    # MSP-IMPROV turn without a transcript). AG-CC takes the segments its gesture model was fitted on.
    config.segments.method = "phones_or_windows"
    return config
