"""The train state of a pretrained encoder holds the checkpoint's weights, placed on the mesh."""

import jax
import numpy as np
import pytest
from flax import nnx

from artser_jax import sharding
from artser_jax import train_state
from artser_jax.configs import demo
from artser_jax.models import hf_loader

torch = pytest.importorskip("torch", reason="torch (a test-only reference, installed by scripts/setup.sh) "
                            "writes the checkpoint")
transformers = pytest.importorskip("transformers", reason="transformers (installed by scripts/setup.sh) "
                                   "writes the checkpoint")


def test_pretrained_encoder_weights_reach_the_replicated_train_state(tmp_path):
    hf_config = transformers.Wav2Vec2Config(
        conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=48, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(hf_config).save_pretrained(tmp_path, safe_serialization=True)
    config = demo.get_config("tiny")
    config.model.encoder = "wav2vec2"
    config.model.pretrained_dir = str(tmp_path)
    mesh = sharding.create_mesh()

    graphdef, state = train_state.create_train_state(config, num_classes=4, mesh=mesh)

    model, _ = nnx.merge(graphdef, state)
    expected = nnx.state(hf_loader.load_encoder(tmp_path), nnx.Param)
    loaded = nnx.state(model.encoder, nnx.Param)
    assert jax.tree.structure(loaded) == jax.tree.structure(expected)
    for got, want in zip(jax.tree.leaves(loaded), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    for leaf in jax.tree.leaves(state):
        assert leaf.sharding.is_equivalent_to(sharding.replicated_sharding(mesh), leaf.ndim)

