"""artser_jax.checkpoint: state + Grain iterator saved together, best/latest retention, 8 -> 1 device."""

import grain
import jax
import jax.numpy as jnp
import numpy as np

from artser_jax import checkpoint
from artser_jax import sharding


def _iterator():
    return iter(grain.MapDataset.range(100).shuffle(seed=3).batch(4).to_iter_dataset())


def test_state_and_iterator_restore_on_fewer_devices(tmp_path):
    mesh8 = sharding.create_mesh(8)
    state = {"w": jax.device_put(jnp.arange(16.0).reshape(8, 2), sharding.data_sharding(mesh8)),
             "step": jax.device_put(jnp.int32(5), sharding.replicated_sharding(mesh8))}
    data = _iterator()
    next(data), next(data)
    ckpt = checkpoint.TrainCheckpointer(tmp_path / "ckpt", async_save=True)
    ckpt.save(2, state, data, metrics={"source_dev/uar": 40.0})
    ckpt.wait()
    expected_next = next(data)

    mesh1 = sharding.create_mesh(1)
    fresh = _iterator()
    abstract = checkpoint.abstract_like(state, sharding.replicated_sharding(mesh1))
    restored = checkpoint.TrainCheckpointer(tmp_path / "ckpt").restore(2, abstract, fresh)
    assert restored["w"].sharding.mesh.devices.size == 1
    np.testing.assert_array_equal(restored["w"], np.arange(16.0).reshape(8, 2))
    assert int(restored["step"]) == 5
    np.testing.assert_array_equal(next(fresh), expected_next)


def test_keeps_best_by_source_dev_uar_and_latest(tmp_path):
    state = {"w": jnp.zeros(3)}
    data = _iterator()
    ckpt = checkpoint.TrainCheckpointer(tmp_path / "ckpt", keep_latest=1, keep_best=1, async_save=False)
    for step, uar in ((1, 30.0), (2, 55.0), (3, 41.0), (4, 50.0)):
        ckpt.save(step, state, data, metrics={"source_dev/uar": uar, "target_test/uar": 100.0 - uar})
    ckpt.save(5, state, data, force=True)  # e.g. a preemption save, no metrics
    ckpt.wait()
    assert ckpt.all_steps() == [2, 5]
    assert ckpt.best_step() == 2
    assert ckpt.latest_step() == 5
    ckpt.close()


def test_export_round_trip(tmp_path):
    params = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}
    checkpoint.export_model(tmp_path / "export", params, {"labels": ["A", "B"], "sample_rate": 16000})
    assert checkpoint.read_export_metadata(tmp_path / "export")["labels"] == ["A", "B"]
    abstract = checkpoint.abstract_like(params, sharding.replicated_sharding(sharding.create_mesh(1)))
    loaded = checkpoint.load_exported_params(tmp_path / "export", abstract)
    np.testing.assert_array_equal(loaded["dense"]["kernel"], np.ones((3, 2)))
