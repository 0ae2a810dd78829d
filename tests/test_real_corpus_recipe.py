"""The README's real-corpus commands and the real-corpus configs' docstring commands, run as written.

The stand-ins are the tiny generated corpora with every TextGrid deleted (the real corpora ship none), so
the chain must align them itself; MSP-IMPROV's transcripts come from the deleted TextGrids' word tiers,
as a user would supply them. The encoder is a random-weight wav2vec 2.0 written by `transformers`. Only
run lengths are shortened (appended overrides); every command and flag is the document's own.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from artser_jax.data import textgrid
from tests.fixture_train import REPO

torch = pytest.importorskip("torch", reason="torch (installed by scripts/setup.sh) writes the checkpoint")
transformers = pytest.importorskip("transformers", reason="transformers writes the checkpoint")

SHORT_RUN = ("--config.total_steps=2", "--config.eval_every=2", "--config.log_every=1",
             "--config.checkpoint.save_every=2", "--config.checkpoint.async_save=False",
             "--config.input.source_batch_size=8", "--config.input.target_batch_size=8",
             "--config.input.eval_batch_size=8", "--config.input.max_seconds=1.5",
             "--config.model.transformer_width=16", "--config.model.transformer_heads=2",
             "--config.model.classifier_hidden=16", "--config.model.logmel.width=16", "--config.model.logmel.n_mels=16",
             "--config.optimizer.warmup_steps=1")


def _commands(text):
    """Shell commands of `text`, backslash continuations joined."""
    return [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]


def readme_real_corpus_commands():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Real corpora"):readme.index("### Configs and ablations")]
    return _commands(re.search(r"```bash\n(.*?)```", section, re.S).group(1))


def docstring_commands(config_name):
    text = (REPO / "configs" / f"{config_name}.py").read_text()
    docstring = text[:text.index('"""', 4)]
    return [c.strip() for c in _commands(docstring) if c.strip().startswith("python launch/")]


@pytest.fixture(scope="module")
def stand_ins(tiny_corpora, tiny_data_dir, tmp_path_factory):
    """`/data` of the README: both corpora without TextGrids, transcripts, a wav2vec2 folder."""
    root = tmp_path_factory.mktemp("real_recipe")
    data = root / "data"
    lines = []
    for corpus, folder in (("crema_d", "CREMA-D"), ("msp_improv", "MSP-IMPROV")):
        shutil.copytree(tiny_corpora / corpus, data / folder, ignore=shutil.ignore_patterns(".demo_generator"))
        for grid in sorted((data / folder).rglob("*.TextGrid")):
            if corpus == "msp_improv":
                words = [i.label for i in textgrid.read_textgrid(grid)["words"] if i.label]
                lines.append(f"{grid.stem}\t{' '.join(words)}")
            grid.unlink()
    # One turn without a transcript: it must get windows, not stop the chain.
    (data / "msp_improv_transcripts.tsv").write_text("\n".join(lines[1:]) + "\n")
    # The builders' landmark cache is keyed by video content: reuse the session's extraction.
    shutil.copytree(tiny_data_dir / "landmark_cache", data / "tfds" / "landmark_cache")
    hf_config = transformers.Wav2Vec2Config(
        conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=48, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(hf_config).save_pretrained(data / "wav2vec2-base", safe_serialization=True)
    transformers.Wav2Vec2FeatureExtractor().save_pretrained(data / "wav2vec2-base")
    return root


def _run(command, root, extra=(), env=None):
    words = shlex.split(command.replace("/data/", f"{root}/data/").replace("$DATA", f"{root}/data/tfds"))
    words = [sys.executable if w in (".venv/bin/python", "python") else w for w in words]
    words = [w.replace("--workdir=runs/", f"--workdir={root}/runs/").replace("--model=runs/", f"--model={root}/runs/")
             for w in words]
    result = subprocess.run(words + list(extra), cwd=REPO, env=env or dict(os.environ), capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, f"{command}\n{result.stderr[-5000:]}"
    return result


@pytest.mark.slow
def test_readme_real_corpus_recipe_runs_as_written(stand_ins, tiny_training):
    commands = readme_real_corpus_commands()
    assert [c.split()[1] for c in commands] == [
        "launch/align.py", "launch/align.py", "launch/prepare_data.py", "launch/prepare_data.py",
        "launch/fit_gestures.py", "launch/fit_gestures.py", "launch/train.py", "launch/evaluate.py",
        "launch/predict.py"]
    for command in commands:
        script = command.split()[1]
        result = _run(command, stand_ins, SHORT_RUN if script in ("launch/train.py", "launch/evaluate.py") else (),
                      env=tiny_training.env())
        if script == "launch/align.py" and "msp_improv" in command:
            coverage = (stand_ins / "data" / "align" / "msp_improv" / "alignment_coverage.tsv").read_text()
            assert "\tno_transcript\twindows\t" in coverage
    run = stand_ins / "runs" / "crema_msp_agcc"
    config = (run / "config.json").read_text()
    assert '"encoder": "wav2vec2"' in config and '"method": "phones_or_windows"' in config
    assert (run / "final" / "target_test" / "report.json").exists()
    assert '"label"' in result.stdout  # the last command, predict


@pytest.mark.parametrize("config_name", ["crema_to_msp", "msp_to_crema", "real_corpora"])
def test_real_corpus_config_docstring_commands_run_as_written(stand_ins, tiny_training, config_name):
    if not (stand_ins / "data" / "tfds" / "gestures_msp_crema.npz").exists():
        pytest.fail("test_readme_real_corpus_recipe_runs_as_written must run first (it builds the datasets)")
    commands = docstring_commands(config_name)
    assert commands, f"configs/{config_name}.py documents no command"
    for command in commands:
        _run(command, stand_ins, SHORT_RUN, env=tiny_training.env())
