"""Shared defaults for every artser_jax training config.

Each [ours] choice of docs/method.md is a field here, so a user who knows the paper's value sets it from
the command line (`--config.loss.gamma=0.3`) without touching code. The experiments (`demo.py`,
`real_corpora.py`) start from `base_config()` and change a few fields. Method, encoder and corpus names
come from their registries (`artser_jax.methods`, `artser_jax.models.encoders`, `artser_jax.data.corpora`).
"""

import ml_collections

from artser_jax import methods
from artser_jax.data import corpora

EMOTIONS = ("ANG", "HAP", "NEU", "SAD")
# Short names of the two directions between the built-in corpora; any "<source>_to_<target>" of
# registered corpus names is accepted too.
DIRECTION_ALIASES = {"crema_to_msp": ("crema_d", "msp_improv"), "msp_to_crema": ("msp_improv", "crema_d")}


def parse_direction(direction):
    """(source, target) corpus names of `direction`: an alias or `<source>_to_<target>`."""
    if direction in DIRECTION_ALIASES:
        return DIRECTION_ALIASES[direction]
    source, separator, target = direction.partition("_to_")
    if not separator or source not in corpora.names() or target not in corpora.names() or source == target:
        raise ValueError(f"Unknown direction {direction!r}; expected one of {sorted(DIRECTION_ALIASES)} or "
                         f"'<source>_to_<target>' with two different corpora of {corpora.names()}")
    return source, target


def corpus_config(name):
    """The config block of one corpus role (`config.source` / `config.target`)."""
    corpus = corpora.get(name)
    return ml_collections.ConfigDict(dict(
        tfds_name=corpus.tfds_name, corpus=corpus.name, train_split=corpus.train_split,
        dev_split=corpus.dev_split, test_split=corpus.test_split))


def parse_arg(arg, **defaults):
    """Parses `key=value,flag` strings (big_vision style) into a ConfigDict of typed values.

    A bare `flag` means True. Values take the type of their default, and booleans are parsed strictly:
    only true/false/1/0/yes/no are accepted, so "False" is False and "Flase" is an error.
    """
    parsed = ml_collections.ConfigDict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, _, value = item.partition("=")
        if key not in defaults:
            raise KeyError(f"Unknown config argument {key!r}; known: {sorted(defaults)}")
        default = defaults[key]
        if isinstance(default, bool):
            if not value:
                parsed[key] = True
                continue
            lowered = value.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"Config argument {key}={value!r} is not a boolean")
            parsed[key] = lowered in ("true", "1", "yes")
        elif default is None or isinstance(default, str):
            parsed[key] = value
        else:
            parsed[key] = type(default)(value)
    return parsed


def base_config(source="crema_d", target="msp_improv", method="agcc"):
    """The full default config for training on `source` and adapting to `target` with `method`."""
    method_entry = methods.get(method)
    config = ml_collections.ConfigDict()
    config.method = method
    config.seed = 0
    config.labels = EMOTIONS

    # Data: both corpora read with tfds.data_source from one data_dir (launch/prepare_data.py output).
    config.data_dir = ml_collections.FieldReference(None, field_type=str)
    config.source = corpus_config(source)
    config.target = corpus_config(target)
    # The fitted GestureModel artifact (launch/fit_gestures.py --out). Needed by agcc only.
    config.gestures_path = ml_collections.FieldReference(None, field_type=str)

    config.input = ml_collections.ConfigDict()
    config.input.sample_rate = 16000
    config.input.max_seconds = 4.0  # [ours] audio cropped (from the start) or zero-padded to this
    config.input.source_batch_size = 32  # [ours] global source utterances per step
    config.input.target_batch_size = 32  # [ours] global target utterances per step
    config.input.eval_batch_size = 64
    config.input.shuffle_seed = 0
    config.input.worker_count = 0  # grain worker processes; 0 reads in the main process
    config.input.prefetch_buffer = 2  # batches read and prepared ahead of the training step
    # Keep every prepared training example in memory after its first read (each process holds the rows
    # it reads: about 0.2 MB per 3 s utterance); worth it when a run makes many epochs over small splits.
    config.input.keep_prepared_in_memory = False

    config.segments = ml_collections.ConfigDict()
    config.segments.method = "phones"  # [ours] 'phones' (TextGrid alignment), 'windows', 'phones_or_windows'
    config.segments.max_segments = 48  # [ours] static segment count per utterance (padded, masked)
    config.segments.window_seconds = 0.2  # [ours] for method='windows'
    config.segments.hop_seconds = 0.1  # [ours]
    config.segments.min_video_frames = 2  # [ours] shorter phone segments are dropped

    config.model = ml_collections.ConfigDict()
    config.model.encoder = "logmel"  # a name of the encoder registry (artser_jax.models.encoders)
    config.model.pretrained_dir = ml_collections.FieldReference(None, field_type=str)
    # [ours] None: the encoder's default (pretrained encoders frozen, log-mel trained); or True / False.
    config.model.freeze_encoder = ml_collections.FieldReference(None, field_type=bool)
    config.model.encoder_layer = -1  # [ours] which hidden state feeds segment pooling (-1 = last)
    config.model.weighted_layer_sum = False  # [ours] learned softmax weights over all layers instead
    # [ours] A pretrained, frozen encoder runs once per utterance: its layers are stored and training and
    # evaluation read them (artser_jax/feature_store.py); False recomputes them at every step.
    config.model.cache_frozen_features = True
    config.model.feature_store_dir = ml_collections.FieldReference(None, field_type=str)  # <data_dir>/feature_store
    config.model.feature_store_dtype = "float16"  # [ours] 'float16' (half the disk) or 'float32'
    # [ours] log-mel front end (artser_jax/models/logmel.py LogMelConfig): 25 ms / 10 ms STFT, a stride-2
    # input conv (20 ms frames, the rate of wav2vec2) and residual conv blocks.
    config.model.logmel = ml_collections.ConfigDict(dict(
        n_fft=400, hop_length=160, n_mels=80, compression="db", utterance_norm=True, width=256,
        input_kernel=5, input_stride=2, num_blocks=2, block_kernel=5))
    config.model.transformer_layers = 2  # [ours]
    config.model.transformer_heads = 4  # [ours]
    config.model.transformer_width = 256  # [ours]
    config.model.dropout = 0.1  # [ours]
    config.model.classifier_hidden = 256  # [ours]

    config.loss = ml_collections.ConfigDict()
    config.loss.gamma = method_entry.default_gamma  # [ours] weight of the method's loss (L_AG / CORAL)
    config.loss.mining = "soft"  # [ours] 'soft' (softmax-weighted positives/negatives) or 'hard'
    config.loss.form = "softplus"  # [ours] 'softplus': log(1 + exp(lam (D+ - D-))); 'hinge'
    config.loss.lam = 1.0  # [ours] lambda of the softplus form
    config.loss.margin = 0.2  # [ours] margin of the hinge form
    config.loss.anchor_clusters = "common"  # [ours] 'common' or 'all' clusters provide anchors
    config.loss.class_weights = "none"  # [ours] 'none' or 'balanced' (inverse source class frequency)
    config.loss.coral_layers = (1, 2)  # [ours] encoder hidden-state indices for layer_anchored
    # Phone classes whose identity anchors phoneme_anchored (ARPAbet-like vowels by default).
    config.loss.anchor_phones = "vowels"

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 1e-4  # [ours]
    config.optimizer.encoder_learning_rate = 1e-5  # [ours] for an unfrozen pretrained encoder
    config.optimizer.weight_decay = 0.01
    config.optimizer.warmup_steps = 200
    config.optimizer.grad_clip_norm = 1.0
    config.total_steps = 4000

    # Evaluators by name: which corpus and split each reads. Best checkpoint = best source_dev UAR.
    config.evals = ml_collections.ConfigDict()
    # `during_training`: also run at every eval_every step (all evaluators run on the final best step).
    config.evals.source_dev = ml_collections.ConfigDict(dict(
        corpus="source", split=config.source.dev_split, during_training=True))
    config.evals.target_test = ml_collections.ConfigDict(dict(
        corpus="target", split=config.target.test_split, during_training=False))

    config.log_every = 50
    config.eval_every = 500
    config.checkpoint = ml_collections.ConfigDict()
    config.checkpoint.save_every = 500
    config.checkpoint.keep_latest = 2
    config.checkpoint.keep_best = 1  # best by source-dev UAR; target labels never select models
    config.checkpoint.async_save = True

    config.mesh = ml_collections.ConfigDict()
    config.mesh.num_devices = ml_collections.FieldReference(None, field_type=int)  # None: all devices
    return config


def shrink_for_tests(config):
    """The `tiny` variant's model, input and run length: seconds per run on a CPU, for unit tests."""
    config.segments.max_segments = 24
    config.input.max_seconds = 1.5
    config.input.source_batch_size = 8
    config.input.target_batch_size = 8
    config.input.eval_batch_size = 8
    config.model.logmel.n_mels = 16
    config.model.logmel.width = 16
    config.model.logmel.num_blocks = 1
    config.loss.coral_layers = (0, 1)  # the tiny encoder has 2 selectable layers
    config.model.transformer_width = 16
    config.model.transformer_heads = 2
    config.model.classifier_hidden = 16
    config.optimizer.warmup_steps = 1
    config.total_steps = 4


def generated_corpora_scale(config):
    """Segments, crop, batch sizes and a small log-mel model for the generated corpora on a 2-core CPU
    (the demo and the controls experiment); the corpora ship exact phone timings, so phones are used."""
    config.segments.method = "phones"
    config.segments.max_segments = 40
    config.input.max_seconds = 3.0
    config.input.source_batch_size = 16
    config.input.target_batch_size = 16
    config.input.keep_prepared_in_memory = True  # ~10 epochs over a few thousand short clips per run
    config.model.encoder = "logmel"
    config.model.logmel.n_mels = 40
    config.model.logmel.width = 64
    config.model.transformer_layers = 1
    config.model.transformer_width = 64
    config.model.transformer_heads = 4
    config.model.classifier_hidden = 64
