"""Issue 11's controlled experiment on generated corpora (docs/controls.md): the corpus pairs, the
arms and the training recipe. `configs/controls.py` is its entry point; `launch/experiment.py
--experiment=controls` runs the whole experiment.

The recipe (gamma, lambda, steps, where L_AG acts) is written here and in docs/controls.md before any
run on the test pair; how it was chosen is in docs/controls.md ("Recipe").
"""

from artser_jax.configs import common

# Generator: parameters version 2 (artser_jax/demo_corpora/parameters.py) and its premise strengths.
PARAMETERS_VERSION = 2
PREMISE_PRESENT = 1.0
PREMISE_ABSENT = 0.0
DEV_GENERATOR_SEED = 1   # the development pair: the recipe is chosen on it
TEST_GENERATOR_SEED = 2  # the test pair: nothing is tuned on it
DEMO_GENERATOR_SEED = 0  # the README demo's premise-present pair (size demo)
TRAINING_SEEDS = (0, 1, 2, 3, 4)
# Arms per premise condition; oracle_emotion is a DIAGNOSTIC (it reads the target's labels).
ARMS = {"present": ("source_only", "agcc", "phoneme_anchored", "layer_anchored", "oracle_emotion"),
        "absent": ("source_only", "agcc")}
BASELINE = "source_only"
# Content hashes (artser_jax/experiment.py corpus_content_hash) of the documented corpora, keyed
# "<size>/seed<seed>/premise<strength>/<corpus>"; filled in from the first clean generation (a corpus
# without an entry is checked against the hash recorded in the output folder when it was generated).
EXPECTED_CONTENT_HASHES = {}

# The recipe (docs/controls.md "Recipe").
RECIPE = dict(
    triplet_gamma=2.0,     # weight of L_AG for agcc, phoneme_anchored and the oracle
    triplet_lam=5.0,       # lambda of the softplus triplet form
    coral_gamma=0.5,       # weight of CORAL for layer_anchored (its default)
    total_steps=800,       # source-dev UAR has plateaued by then (docs/controls.md)
    eval_every=100,
    learning_rate=1e-3,
    warmup_steps=50,
)
TRIPLET_METHODS = ("agcc", "phoneme_anchored", "oracle_emotion")


def get_config(arg=None):
    """`direction=crema_to_msp|msp_to_crema,method=<arm>,tiny` (tiny: seconds-long unit-test runs)."""
    args = common.parse_arg(arg, direction="crema_to_msp", method="agcc", tiny=False)
    source, target = common.parse_direction(args.direction)
    config = common.base_config(source=source, target=target, method=args.method)
    common.generated_corpora_scale(config)
    config.input.eval_batch_size = 48
    if args.method in TRIPLET_METHODS:
        config.loss.gamma = RECIPE["triplet_gamma"]
        config.loss.lam = RECIPE["triplet_lam"]
    elif args.method == "layer_anchored":
        config.loss.gamma = RECIPE["coral_gamma"]
    config.optimizer.learning_rate = RECIPE["learning_rate"]
    config.optimizer.warmup_steps = RECIPE["warmup_steps"]
    config.total_steps = RECIPE["total_steps"]
    config.eval_every = RECIPE["eval_every"]
    config.log_every = 50
    if args.tiny:
        common.shrink_for_tests(config)
        config.log_every = 2
        config.eval_every = 2
    config.checkpoint.save_every = config.eval_every
    # Every evaluated checkpoint is kept, so the diagnostics can be computed at each evaluation.
    config.checkpoint.keep_latest = config.total_steps // config.eval_every + 1
    config.checkpoint.async_save = False
    return config
