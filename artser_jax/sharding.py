"""Everything device-specific: the mesh, shardings, multi-host initialisation.

The whole system is data-parallel over one mesh axis, `data`. Parameters are replicated; batches are
split along their leading axis. On several hosts each process feeds its own shard of the global batch.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed(coordinator_address=None, num_processes=None, process_id=None,
                           local_device_ids=None, auto=False):
    """Joins a multi-host run; a no-op for a single process.

    On TPU pods and managed clusters `jax.distributed.initialize()` finds its peers by itself (`auto`);
    elsewhere pass the coordinator address, the process count and this process's id.
    """
    if auto:
        jax.distributed.initialize()
        return
    if num_processes is None or num_processes <= 1:
        if coordinator_address is None:
            return
    # CPU processes need a collectives backend to exchange data at all; it does not affect GPU/TPU.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id,
                               local_device_ids=local_device_ids)


def create_mesh(num_devices=None):
    """A 1-D mesh with axis `data` over the first `num_devices` devices (all by default)."""
    devices = jax.devices()
    if num_devices is not None:
        if num_devices > len(devices):
            raise ValueError(f"asked for {num_devices} devices, only {len(devices)} are present")
        devices = devices[:num_devices]
    return Mesh(np.array(devices), (DATA_AXIS,))


def data_sharding(mesh):
    """Split the leading (batch) axis over `data`."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated_sharding(mesh):
    return NamedSharding(mesh, PartitionSpec())


def host_to_global(batch, mesh):
    """Global arrays split over `data` from this process's numpy batch (a pytree, leading axis = local batch).

    With several processes each passes its own rows; the global batch is their concatenation in process order.
    """
    target = data_sharding(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(target, np.asarray(x)), batch)


def local_batch_size(global_batch_size, mesh):
    """Rows this process feeds per step; the global batch must split evenly over processes and devices."""
    if global_batch_size % mesh.devices.size:
        raise ValueError(f"global batch size {global_batch_size} is not divisible by the "
                         f"{mesh.devices.size} devices of the mesh")
    return global_batch_size // jax.process_count()


def fetch_replicated(tree):
    """Numpy copies of replicated global arrays; works on every process of a multi-host run, where
    `np.asarray` refuses arrays that span other processes' devices."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)
