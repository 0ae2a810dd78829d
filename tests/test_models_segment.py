"""Segment model: pooling, layer selection, freezing (the stored-features path: tests/test_feature_store.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artser_jax import train_state
from artser_jax.configs import demo
from artser_jax.models import encoders, segment_model
from artser_jax.models.wav2vec2 import Wav2Vec2Config, Wav2Vec2Encoder

TINY_WAV2VEC2 = Wav2Vec2Config(conv_dim=(8, 8, 8), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), hidden_size=16,
                               num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                               num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)


def test_pooling_weights_by_frame_centres():
    # 6 frames, hop 0.1 s, window 0.1 s: centres 0.05, 0.15, ..., 0.55; the last frame is padding.
    centres = segment_model.frame_centres(6, 0.1, 0.1)
    frame_mask = jnp.array([[True] * 5 + [False]])
    seg_start = jnp.array([[0.0, 0.1, 0.42, 0.5]])
    seg_end = jnp.array([[0.2, 0.12, 0.44, 0.6]])
    seg_mask = jnp.array([[True, True, True, False]])
    weights = np.asarray(segment_model.segment_pooling_weights(centres, frame_mask, seg_start, seg_end, seg_mask))[0]
    np.testing.assert_allclose(weights[0], [0.5, 0.5, 0, 0, 0, 0])   # centres 0.05 and 0.15
    np.testing.assert_allclose(weights[1], [0, 1, 0, 0, 0, 0])       # no centre inside: nearest (0.15)
    np.testing.assert_allclose(weights[2], [0, 0, 0, 0, 1, 0])       # nearest valid frame to 0.43 is 0.45
    np.testing.assert_allclose(weights[3], 0)                        # padded segment


def _batch(b=2, n=2000, s=3):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((b, n)).astype(np.float32)
    audio_mask = np.ones((b, n), bool)
    audio_mask[1, 1500:] = False
    seg_start = np.tile(np.array([0.0, 0.06, 0.12], np.float32)[:s], (b, 1))
    seg_mask = np.ones((b, s), bool)
    seg_mask[1, -1] = False
    return audio * audio_mask, audio_mask, seg_start, seg_start + 0.06, seg_mask


@pytest.mark.parametrize("selection", ["last", "weighted", 1])
def test_outputs_and_layer_selection(selection):
    encoder = Wav2Vec2Encoder(TINY_WAV2VEC2, rngs=nnx.Rngs(0))
    model = segment_model.SegmentEmotionModel(encoder, num_classes=4, width=16, num_heads=2, classifier_hidden=8,
                                              layer_selection=selection, frozen_encoder=True, rngs=nnx.Rngs(1))
    audio, audio_mask, seg_start, seg_end, seg_mask = _batch()
    out = model(audio, audio_mask, seg_start, seg_end, seg_mask)
    assert out.logits.shape == (2, 4) and out.segment_embeddings.shape == (2, 3, 16)
    assert np.all(np.asarray(out.segment_embeddings)[1, 2] == 0)  # padded segment
    assert len(out.hidden_states) == 3 and out.hidden_states[0].shape == (2, 99, 16)
    np.testing.assert_array_equal(np.asarray(out.frame_mask).sum(1), [99, 74])
    encoded = encoder(jnp.asarray(audio), jnp.asarray(audio_mask))
    np.testing.assert_array_equal(np.asarray(out.hidden_states[-1]), np.asarray(encoded.frames))
    assert np.all(np.isfinite(np.asarray(out.logits)))


def test_frozen_encoder_gets_no_gradient_but_layer_weights_do():
    encoder = Wav2Vec2Encoder(TINY_WAV2VEC2, rngs=nnx.Rngs(0))
    model = segment_model.SegmentEmotionModel(encoder, width=16, num_heads=2, classifier_hidden=8,
                                              layer_selection="weighted", frozen_encoder=True, rngs=nnx.Rngs(1))
    batch = _batch()

    def loss(model):
        return jnp.sum(model(*batch).logits ** 2)

    grads = nnx.grad(loss)(model)
    encoder_grads = jax.tree.leaves(nnx.state(grads, nnx.PathContains("encoder")))
    assert encoder_grads and all(np.all(np.asarray(g) == 0) for g in encoder_grads)
    assert np.any(np.asarray(grads.layer_weights[...]) != 0)
    trainable = nnx.state(model, segment_model.trainable_filter(model))
    paths = [path for path, _ in nnx.to_flat_state(trainable)]
    assert paths and not any("encoder" in path for path in paths) and ("layer_weights",) in paths
    unfrozen = segment_model.SegmentEmotionModel(encoder, width=16, num_heads=2, classifier_hidden=8,
                                                 frozen_encoder=False, rngs=nnx.Rngs(1))
    assert segment_model.trainable_filter(unfrozen) is nnx.Param


def test_pretrained_encoders_are_frozen_by_default_and_log_mel_is_trained():
    config = demo.get_config("tiny")
    assert config.model.encoder == "logmel" and config.model.freeze_encoder is None
    model = train_state.build_model(config, 4, nnx.Rngs(0))
    assert not model.frozen_encoder and segment_model.trainable_filter(model) is nnx.Param
    for name in ("wav2vec2", "wavlm"):
        config.model.encoder = name
        assert encoders.get(name).pretrained and encoders.is_frozen(config.model)
        config.model.freeze_encoder = False
        assert not encoders.is_frozen(config.model)
        config.model.freeze_encoder = None
    config.model.encoder = "logmel"
    config.model.freeze_encoder = True  # an explicit choice overrides the encoder's default
    assert train_state.build_model(config, 4, nnx.Rngs(0)).frozen_encoder


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="layer_selection 5 is out of range for 3 layers"):
        segment_model.SegmentEmotionModel(Wav2Vec2Encoder(TINY_WAV2VEC2, rngs=nnx.Rngs(0)), layer_selection=5,
                                          rngs=nnx.Rngs(0))
    # Other tests may register encoders of their own: the message lists whatever is registered.
    with pytest.raises(ValueError, match="unknown encoder 'mfcc'; registered: .*logmel, stored_features, wav2vec2, "
                       "wavlm"):
        encoders.get("mfcc")
    config = demo.get_config("tiny")
    config.model.encoder = "stored_features"
    with pytest.raises(ValueError, match="reads a feature store that the trainer builds"):
        train_state.build_model(config, 4, nnx.Rngs(0))
    with pytest.raises(ValueError, match="model_type"):
        Wav2Vec2Config.from_hf_dict({"model_type": "hubert"}, source="x/config.json")
