"""The only place device meshes and shardings are made.

Data parallelism over every device: one mesh axis, `data`, whose size is the number of devices
used. Batches are split along their leading axis; parameters and optimiser state are replicated.
Multi-host: each process feeds its own rows (`host_local_batch_to_global`) and handles its own
share of any work list (`process_share`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
T = TypeVar("T")


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D data-parallel mesh over the first `num_devices` devices (all devices if None)."""
    devices = jax.devices()
    if num_devices is None or num_devices <= 0:
        num_devices = len(devices)
    if num_devices > len(devices):
        raise ValueError(f"asked for {num_devices} devices but only {len(devices)} exist")
    return jax.make_mesh(
        (num_devices,),
        (DATA_AXIS,),
        axis_types=(jax.sharding.AxisType.Auto,),
        devices=devices[:num_devices],
    )


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Sharding that splits the leading (batch) axis over the data axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def data_parallel_size(mesh: Mesh) -> int:
    """Number of shards the batch axis is split into."""
    return mesh.shape[DATA_AXIS]


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Raises if the global batch does not divide evenly over the devices."""
    n = data_parallel_size(mesh)
    if batch_size % n:
        raise ValueError(f"global batch size {batch_size} is not divisible by {n} devices")


def host_local_batch_to_global(batch: Any, mesh: Mesh) -> Any:
    """Turns this process's rows of a batch (a pytree of numpy arrays) into global jax arrays."""
    sharding = batch_sharded(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places a pytree on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))


def process_share(items: Sequence[T]) -> list[T]:
    """This process's contiguous share of a work list (all of it on a single host)."""
    bounds = np.linspace(0, len(items), jax.process_count() + 1).astype(int)
    i = jax.process_index()
    return list(items[bounds[i] : bounds[i + 1]])


def maybe_initialize_distributed(enabled: bool) -> None:
    """Calls `jax.distributed.initialize()` (cluster auto-detection) when asked to."""
    if enabled:
        jax.distributed.initialize()
