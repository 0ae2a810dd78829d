"""Our wav2vec2 / WavLM encoder on its own: geometry, padding, dropout, WavLM buckets, config checks."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artser_jax.models import wav2vec2
from artser_jax.models.frames import conv_stack_geometry

SMALL = dict(conv_dim=(8, 8, 8), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), hidden_size=16,
             num_hidden_layers=2, num_attention_heads=2, intermediate_size=16, num_conv_pos_embeddings=8,
             num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True)


def test_standard_geometry_is_20ms_hop_25ms_window():
    config = wav2vec2.Wav2Vec2Config()
    assert conv_stack_geometry(config.conv_kernel, config.conv_stride) == (320, 400)


@pytest.mark.parametrize("model_type", ["wav2vec2", "wavlm"])
def test_valid_frames_do_not_depend_on_padding_with_layer_norm_extractor(model_type):
    encoder = wav2vec2.Wav2Vec2Encoder(wav2vec2.Wav2Vec2Config(model_type=model_type, **SMALL), rngs=nnx.Rngs(0))
    audio = np.random.default_rng(0).standard_normal((1, 1200)).astype(np.float32)
    alone = encoder(jnp.asarray(audio), jnp.ones((1, 1200), bool))
    padded = np.concatenate([audio, np.full((1, 800), 3.0, np.float32)], axis=1)
    mask = np.arange(2000)[None] < 1200
    batch = encoder(jnp.asarray(padded), jnp.asarray(mask))
    valid = int(alone.frame_mask.sum())
    assert valid == 59 and int(batch.frame_mask.sum()) == valid
    for a, b in zip(alone.hidden_states, batch.hidden_states):
        np.testing.assert_allclose(np.asarray(b)[:, :valid], np.asarray(a), atol=2e-5)
    np.testing.assert_allclose(np.asarray(batch.frames)[:, :valid], np.asarray(alone.frames), atol=2e-5)


def test_dropout_only_when_not_deterministic():
    config = wav2vec2.Wav2Vec2Config(**{**SMALL, "hidden_dropout": 0.5})
    encoder = wav2vec2.Wav2Vec2Encoder(config, rngs=nnx.Rngs(0))
    audio = jnp.asarray(np.random.default_rng(1).standard_normal((1, 800)).astype(np.float32))
    first, second = encoder(audio).frames, encoder(audio).frames
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    assert not np.allclose(np.asarray(encoder(audio, deterministic=False).frames), np.asarray(first))


def test_relative_position_buckets_match_transformers():
    torch = pytest.importorskip("torch", reason="torch is not installed: no reference to compare with")
    pytest.importorskip("transformers", reason="transformers is not installed: no reference to compare with")
    from transformers.models.wavlm.modeling_wavlm import WavLMAttention

    attention = WavLMAttention(embed_dim=8, num_heads=2, num_buckets=320, max_distance=800)
    positions = torch.arange(1500)
    expected = attention._relative_positions_bucket(positions[None, :] - positions[:, None]).numpy()
    np.testing.assert_array_equal(wav2vec2.relative_position_buckets(1500, 320, 800), expected)


def test_config_rejects_unsupported_options():
    with pytest.raises(ValueError, match="feat_extract_norm"):
        wav2vec2.Wav2Vec2Config(feat_extract_norm="batch")
    with pytest.raises(ValueError, match="add_adapter"):
        wav2vec2.Wav2Vec2Config.from_hf_dict({"model_type": "wav2vec2", "add_adapter": True})
    with pytest.raises(ValueError, match="cfg.json: hidden_act"):
        wav2vec2.Wav2Vec2Config.from_hf_dict({"model_type": "wavlm", "hidden_act": "tanh"}, source="cfg.json")
    config = wav2vec2.Wav2Vec2Config.from_hf_dict({"model_type": "wavlm", "conv_dim": [4, 4], "conv_kernel": [3, 3],
                                                   "conv_stride": [2, 2], "vocab_size": 32})
    assert config.model_type == "wavlm" and config.conv_dim == (4, 4)


def test_bfloat16_matmuls_stay_close_to_float32():
    config = wav2vec2.Wav2Vec2Config(**SMALL)
    exact = wav2vec2.Wav2Vec2Encoder(config, rngs=nnx.Rngs(0))
    fast = wav2vec2.Wav2Vec2Encoder(config, rngs=nnx.Rngs(0), matmul_dtype=jnp.bfloat16)
    audio = jnp.asarray(np.random.default_rng(2).standard_normal((1, 1200)).astype(np.float32))
    want, got = np.asarray(exact(audio).frames), np.asarray(fast(audio).frames)
    assert got.dtype == np.float32
    assert 0 < np.abs(got - want).max() < 0.05 * np.abs(want).max()
