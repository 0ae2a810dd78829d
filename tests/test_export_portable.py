"""The portable export: StableHLO and ONNX agree with the Flax model on real audio (log-mel and wav2vec2
encoders), reload without this package's model code, run without JAX; the sidecar checks itself; the
model card says what the model is."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow_datasets as tfds

from artser_jax import export
from artser_jax import portable
from artser_jax import predict
from artser_jax import segments as segments_lib
from artser_jax import sharding
from artser_jax import sidecar
from artser_jax import train_state
from artser_jax.configs import demo
from tests.fixture_train import REPO

PARITY = 1e-4  # issue 13: ONNX and StableHLO within 1e-4 of the Flax model
# The packages `--backend=onnx` needs, pinned as in requirements.txt; nothing else goes into its venv.
ONNX_ONLY_PACKAGES = ("onnxruntime==1.32.0", "numpy==2.4.6", "soundfile==0.14.0", "soxr==1.1.0")
# Reloads model.stablehlo with jax alone and checks that no artser_jax module was imported.
STABLEHLO_RUNNER = f"""
import sys
import numpy as np
from jax import export
function = export.deserialize(bytearray(open(sys.argv[1], "rb").read()))
inputs = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(function.call(*[inputs[name] for name in {portable.INPUT_NAMES!r}])))
assert not [m for m in sys.modules if m.startswith("artser_jax")], "model code was imported"
"""


def _real_inputs(tiny_data_dir, metadata, count=3):
    """Test utterances of the tiny target corpus at their real lengths (padded to the longest, masked),
    with the segments prediction computes for them (fixed windows over the voiced audio)."""
    examples = tfds.data_source("msp_improv_av/emotion4", split="test", data_dir=tiny_data_dir)
    options = metadata["segments"]
    audios = [examples[i]["audio"] for i in range(count)]
    length = max(len(a) for a in audios)
    audio = np.zeros((count, length), np.float32)
    audio_mask = np.zeros((count, length), bool)
    rows = []
    for i, samples in enumerate(audios):
        audio[i, :len(samples)], audio_mask[i, :len(samples)] = samples.astype(np.float32) / 32768.0, True
        segments = segments_lib.utterance_segments(
            {"audio": samples}, "windows", options["max_segments"], window_seconds=options["window_seconds"],
            hop_seconds=options["hop_seconds"])
        rows.append([segments[k] for k in ("seg_start", "seg_end", "seg_mask")])
    seg_start, seg_end, seg_mask = (np.stack(column) for column in zip(*rows))
    assert seg_mask.any(axis=1).all()
    return audio, audio_mask, seg_start, seg_end, seg_mask


def _three_ways(directory, inputs, tmp_path):
    """(Flax, StableHLO reloaded in a process without the model code, ONNX in onnxruntime) outputs."""
    import onnxruntime  # pylint: disable=g-import-not-at-top

    model, _ = export.load_exported_model(directory)
    flax_out = np.asarray(portable.probabilities_function(model)(*inputs))
    np.savez(tmp_path / "inputs.npz", **dict(zip(portable.INPUT_NAMES, inputs)))
    script = tmp_path / "run_stablehlo.py"
    script.write_text(STABLEHLO_RUNNER)
    result = subprocess.run([sys.executable, str(script), str(directory / portable.STABLEHLO_FILE),
                             str(tmp_path / "inputs.npz"), str(tmp_path / "stablehlo.npy")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    session = onnxruntime.InferenceSession(str(directory / portable.ONNX_FILE), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, dict(zip(portable.INPUT_NAMES, inputs)))[0]
    return flax_out, np.load(tmp_path / "stablehlo.npy"), onnx_out


def test_logmel_export_is_portable_with_parity_on_real_audio(reference_run, tiny_data_dir, tmp_path):
    directory = reference_run / "export"
    metadata = sidecar.read(directory)
    record = metadata["portable"]
    assert record["stablehlo"] == portable.STABLEHLO_FILE and record["onnx"] == portable.ONNX_FILE
    assert record["onnx_max_abs_diff"] < PARITY and record["stablehlo_max_abs_diff"] < PARITY
    inputs = _real_inputs(tiny_data_dir, metadata)
    flax_out, stablehlo_out, onnx_out = _three_ways(directory, inputs, tmp_path)
    print(f"logmel parity on {inputs[0].shape}: StableHLO {np.abs(stablehlo_out - flax_out).max():.2e}, "
          f"ONNX {np.abs(onnx_out - flax_out).max():.2e}")
    np.testing.assert_allclose(stablehlo_out, flax_out, atol=PARITY, rtol=0)
    np.testing.assert_allclose(onnx_out, flax_out, atol=PARITY, rtol=0)
    card = (directory / "MODEL_CARD.md").read_text()
    assert metadata["integrity"]["parameters_sha256"] in card and "## Limitations" in card
    assert "crema_d" in card and "msp_improv" in card


def test_wav2vec2_export_parity_and_model_card(tiny_data_dir, tmp_path):
    transformers = pytest.importorskip("transformers", reason="transformers (installed by scripts/setup.sh) "
                                       "writes the random-weight wav2vec2 checkpoint")
    torch = pytest.importorskip("torch", reason="torch (installed by scripts/setup.sh) backs transformers")
    hf_config = transformers.Wav2Vec2Config(
        conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=48, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(hf_config).save_pretrained(tmp_path / "w2v", safe_serialization=True)
    config = demo.get_config("tiny")
    config.model.encoder = "wav2vec2"
    config.model.pretrained_dir = str(tmp_path / "w2v")
    config.data_dir = str(tiny_data_dir)
    graphdef, state = train_state.create_train_state(config, num_classes=4, mesh=sharding.create_mesh(1))
    final = {"source_dev/uar": 41.25, "source_dev/wa": 40.0, "source_dev/macro_f1": 39.5,
             "target_test/uar": 30.5, "target_test/wa": 31.0, "target_test/macro_f1": 28.75}
    directory = tmp_path / "export"
    export.export(directory, graphdef, state, config, final_metrics=final, best_step=7)

    metadata = sidecar.read(directory)
    assert metadata["portable"]["onnx"] and metadata["portable"]["stablehlo"], metadata["portable"]
    inputs = _real_inputs(tiny_data_dir, metadata)
    flax_out, stablehlo_out, onnx_out = _three_ways(directory, inputs, tmp_path)
    print(f"wav2vec2 parity on {inputs[0].shape}: StableHLO {np.abs(stablehlo_out - flax_out).max():.2e}, "
          f"ONNX {np.abs(onnx_out - flax_out).max():.2e}")
    np.testing.assert_allclose(stablehlo_out, flax_out, atol=PARITY, rtol=0)
    np.testing.assert_allclose(onnx_out, flax_out, atol=PARITY, rtol=0)

    card = (directory / "MODEL_CARD.md").read_text()
    assert "| source_dev | 41.25 | 40.00 | 39.50 |" in card and "| target_test | 30.50 | 31.00 | 28.75 |" in card
    assert "Step 7." in card and "wav2vec2 (pretrained from" in card
    assert sidecar.file_hash(tmp_path / "w2v" / "model.safetensors") in card
    assert sidecar.file_hash(directory / portable.ONNX_FILE) in card


def _edited_copy(reference_run, tmp_path, edit):
    directory = tmp_path / "export"
    shutil.copytree(reference_run / "export", directory)
    path = directory / sidecar.FILENAME
    path.write_text(edit(path.read_text()))
    return directory


@pytest.mark.parametrize("backend", ["jax", "onnx"])
def test_edited_sidecar_fails_naming_the_field(reference_run, tmp_path, backend):
    def swap_labels(text):
        metadata = json.loads(text)
        metadata["labels"] = [metadata["labels"][1], metadata["labels"][0], *metadata["labels"][2:]]
        return json.dumps(metadata)

    def change_rate(text):
        return json.dumps({**json.loads(text), "sample_rate": 22050})

    for name, edit, field in (("labels", swap_labels, "'labels'"), ("rate", change_rate, "'sample_rate'")):
        directory = _edited_copy(reference_run, tmp_path / name, edit)
        with pytest.raises(sidecar.ExportError, match=f"model.json: field {field} does not match"):
            predict.Predictor(directory, backend=backend)
    truncated = _edited_copy(reference_run, tmp_path / "truncated", lambda text: text[:len(text) // 2])
    with pytest.raises(sidecar.ExportError, match=f"{truncated / 'model.json'}: not valid JSON"):
        predict.Predictor(truncated, backend=backend)
    result = subprocess.run([sys.executable, str(REPO / "launch" / "predict.py"), f"--model={truncated}",
                             f"--wav={REPO / 'README.md'}", f"--backend={backend}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {truncated / 'model.json'}: not valid JSON")


def test_replaced_model_files_fail_their_hash(reference_run, tmp_path):
    directory = _edited_copy(reference_run, tmp_path, lambda text: text)
    onnx_path = directory / portable.ONNX_FILE
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    with pytest.raises(sidecar.ExportError, match="model.onnx: contents do not match the hash"):
        predict.Predictor(directory, backend="onnx")
    metadata = json.loads((directory / sidecar.FILENAME).read_text())
    metadata["integrity"]["parameters_sha256"] = "0" * 64
    (directory / sidecar.FILENAME).write_text(json.dumps(metadata))
    with pytest.raises(sidecar.ExportError, match="params: parameters do not match the hash"):
        predict.Predictor(directory, backend="jax")


def test_onnx_backend_runs_in_a_fresh_venv_without_jax(reference_run, tmp_path):
    """A new virtualenv with only onnxruntime, numpy, soundfile and soxr (wheels from pip's cache or the
    configured index, installed with --no-index) runs `launch/predict.py --backend=onnx`; its output
    equals the JAX backend's in the full environment."""
    wheels = tmp_path / "wheels"
    download = subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
                               "-d", str(wheels), *ONNX_ONLY_PACKAGES], capture_output=True, text=True, timeout=600)
    if download.returncode != 0:
        pytest.skip(f"the wheels of {', '.join(ONNX_ONLY_PACKAGES)} are not available: {download.stderr[-500:]}")
    venv = tmp_path / "onnx_only"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                              "--no-index", "--find-links", str(wheels), *ONNX_ONLY_PACKAGES],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    assert subprocess.run([str(python), "-c", "import jax"], capture_output=True).returncode != 0
    assert subprocess.run([str(python), "-c", "import flax"], capture_output=True).returncode != 0

    seconds = np.arange(int(2.5 * 44100)) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 180 * seconds) * (1 + 0.5 * np.sin(2 * np.pi * 4 * seconds))
    wav = tmp_path / "stereo_44k.wav"
    soundfile.write(wav, np.stack([tone, 0.5 * tone], axis=1), 44100)
    command = ["launch/predict.py", f"--model={reference_run / 'export'}", f"--wav={wav}"]
    onnx_only = subprocess.run([str(python), *command, "--backend=onnx"], cwd=REPO, capture_output=True,
                               text=True, timeout=300, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)})
    assert onnx_only.returncode == 0, onnx_only.stderr[-3000:]
    outputs = {}
    for backend in ("onnx", "jax"):
        full = subprocess.run([sys.executable, *command, f"--backend={backend}"], cwd=REPO, capture_output=True,
                              text=True, timeout=300)
        assert full.returncode == 0, full.stderr[-3000:]
        outputs[backend] = json.loads(full.stdout)[0]
    got = json.loads(onnx_only.stdout)[0]
    assert got == outputs["onnx"]  # the same onnxruntime, numpy, soundfile and soxr: the same numbers
    assert got["label"] == outputs["jax"]["label"] and len(got["timeline"]) == 3
    # The ONNX model computes the log-mel spectrum as a DFT product instead of an FFT (portable.py):
    # on this pure tone, whose quiet mel bands are rounding noise, that moves probabilities by < 1e-4.
    assert got["probabilities"] == pytest.approx(outputs["jax"]["probabilities"], abs=PARITY)
