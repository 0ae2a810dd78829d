"""Our NNX wav2vec2 / WavLM against transformers' PyTorch models, loaded through our HF-folder loader.

Small random configs of every layout; weights perturbed away from HF's init (which zeroes biases and sets
norms to identity) so that every tensor matters. Compared on all frames, padded ones included: our
encoder zeroes and masks padded frames exactly like the reference.
"""

import numpy as np
import pytest

# The reference implementation; requirements-test.txt and scripts/setup.sh install both, so CI runs these.
torch = pytest.importorskip("torch", reason="torch is not installed: no PyTorch reference to compare with")
transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed: no PyTorch reference to compare with")

import jax.numpy as jnp  # noqa: E402

from artser_jax.models import hf_loader  # noqa: E402

TOLERANCE = 1e-4
LAYOUTS = [
    ("wav2vec2", False, "group"),  # wav2vec2-base style
    ("wav2vec2", True, "layer"),   # large-lv60 / large-robust style
    ("wavlm", False, "group"),     # WavLM-base style
    ("wavlm", True, "layer"),      # WavLM-large style
]


def _small_hf_model(model_type, stable_layer_norm, feat_extract_norm):
    common = dict(conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), hidden_size=32,
                  num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, num_conv_pos_embeddings=16,
                  num_conv_pos_embedding_groups=4, do_stable_layer_norm=stable_layer_norm,
                  feat_extract_norm=feat_extract_norm, conv_bias=feat_extract_norm == "layer")
    if model_type == "wavlm":
        # Few buckets and a short max distance so both bucket branches and the clamp are exercised.
        config = transformers.WavLMConfig(num_buckets=32, max_bucket_distance=64, **common)
        model_class = transformers.WavLMModel
    else:
        config = transformers.Wav2Vec2Config(**common)
        model_class = transformers.Wav2Vec2Model
    torch.manual_seed(0)
    model = model_class(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


def _padded_audio():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, 3000)).astype(np.float32)
    mask = np.ones((2, 3000), bool)
    mask[1, 1900:] = False
    audio[1, 1900:] = 0.0
    return audio, mask


@pytest.mark.parametrize("model_type,stable_layer_norm,feat_extract_norm", LAYOUTS)
def test_hidden_states_match_transformers(tmp_path, model_type, stable_layer_norm, feat_extract_norm):
    reference = _small_hf_model(model_type, stable_layer_norm, feat_extract_norm)
    reference.save_pretrained(tmp_path, safe_serialization=True)
    assert (tmp_path / "model.safetensors").is_file()
    ours = hf_loader.load_encoder(tmp_path)

    audio, mask = _padded_audio()
    with torch.no_grad():
        expected = reference(torch.from_numpy(audio), attention_mask=torch.from_numpy(mask.astype(np.int64)),
                             output_hidden_states=True)
    got = ours(jnp.asarray(audio), jnp.asarray(mask))

    # 149 frames for the full clip; the padded clip's frame mask follows HF's feature-vector mask.
    np.testing.assert_array_equal(np.asarray(got.frame_mask).sum(1), [149, 94])
    assert len(got.hidden_states) == len(expected.hidden_states) == 3
    for layer, (want, have) in enumerate(zip(expected.hidden_states, got.hidden_states)):
        diff = np.abs(want.numpy() - np.asarray(have)).max()
        assert diff <= TOLERANCE, f"hidden state {layer}: max abs diff {diff}"
    diff = np.abs(expected.last_hidden_state.numpy() - np.asarray(got.frames)).max()
    assert diff <= TOLERANCE, f"last hidden state: max abs diff {diff}"


def test_pytorch_bin_checkpoint_of_a_task_model_loads(tmp_path):
    """A `pytorch_model.bin` of a CTC model: encoder under the `wav2vec2.` prefix, the head skipped."""
    config = transformers.Wav2Vec2Config(conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2), hidden_size=16,
                                         num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                                         num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, vocab_size=5)
    torch.manual_seed(1)
    reference = transformers.Wav2Vec2ForCTC(config).eval()
    config.save_pretrained(tmp_path)
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    ours = hf_loader.load_encoder(tmp_path)
    audio = np.random.default_rng(1).standard_normal((1, 800)).astype(np.float32)
    with torch.no_grad():
        expected = reference.wav2vec2(torch.from_numpy(audio)).last_hidden_state.numpy()
    assert np.abs(expected - np.asarray(ours(jnp.asarray(audio)).frames)).max() <= TOLERANCE


def test_loader_names_missing_and_unexpected_weights(tmp_path):
    from safetensors.numpy import load_file, save_file

    reference = _small_hf_model("wav2vec2", False, "group")
    reference.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["encoder.layers.1.feed_forward.output_dense.bias"]
    tensors["encoder.layers.1.surprise"] = np.zeros(3, np.float32)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError) as error:
        hf_loader.load_encoder(tmp_path)
    assert "encoder.layers.1.feed_forward.output_dense.bias" in str(error.value)
    assert "encoder.layers.1.surprise" in str(error.value)
    assert str(tmp_path) in str(error.value)


def test_loader_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        hf_loader.load_encoder(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "hubert"}')
    with pytest.raises(ValueError, match="hubert"):
        hf_loader.load_encoder(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "wav2vec2"}')
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        hf_loader.load_encoder(tmp_path)


def test_input_normalisation_follows_preprocessor_config(tmp_path):
    """With `do_normalize=True` our encoder on raw audio equals HF's feature extractor + model."""
    reference = _small_hf_model("wav2vec2", True, "layer")
    reference.save_pretrained(tmp_path)
    extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    extractor.save_pretrained(tmp_path)
    ours = hf_loader.load_encoder(tmp_path)
    assert ours.normalize_audio

    rng = np.random.default_rng(4)
    clips = [3.0 * rng.standard_normal(3000).astype(np.float32) + 0.5,
             0.1 * rng.standard_normal(1900).astype(np.float32)]
    inputs = extractor(clips, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
    with torch.no_grad():
        expected = reference(inputs.input_values, attention_mask=inputs.attention_mask).last_hidden_state.numpy()
    audio = np.zeros((2, 3000), np.float32)
    mask = np.zeros((2, 3000), bool)
    for row, clip in enumerate(clips):
        audio[row, :len(clip)], mask[row, :len(clip)] = clip, True
    got = ours(jnp.asarray(audio), jnp.asarray(mask))
    assert np.abs(expected - np.asarray(got.frames)).max() <= TOLERANCE
