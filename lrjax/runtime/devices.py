"""Where training runs: one mesh over every device of every process, declared once.

The batch is sharded along the mesh's `data` axis and everything else is replicated. Under
`jax.jit` a mean over the sharded batch axis is a global mean, so BatchNorm statistics and
gradients are averaged over all devices without any explicit collective in the model code.
Several hosts join through `jax.distributed.initialize` (JAX's multi-controller runtime): every
process runs the same program on the same data order and feeds its own slice of each batch.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

DATA_AXIS = "data"


def maybe_initialize_distributed(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> bool:
  """Joins a multi-process run when asked to by arguments or by the standard environment.

  Arguments win; otherwise `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID`
  are read, and on a managed cluster (SLURM, Open MPI, Kubernetes, Cloud TPU) a bare
  `LRJAX_DISTRIBUTED=1` lets JAX detect the rest. Returns whether the runtime was initialised.
  """
  env = os.environ
  address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS")
  if num_processes is None and env.get("JAX_NUM_PROCESSES"):
    num_processes = int(env["JAX_NUM_PROCESSES"])
  if process_id is None and env.get("JAX_PROCESS_ID"):
    process_id = int(env["JAX_PROCESS_ID"])
  if not address and env.get("LRJAX_DISTRIBUTED") != "1":
    return False
  if jax.distributed.is_initialized():
    return True
  jax.distributed.initialize(
    coordinator_address=address, num_processes=num_processes, process_id=process_id
  )
  return True


@dataclasses.dataclass(frozen=True)
class Placement:
  """The mesh and the two shardings every array of a run uses."""

  mesh: jax.sharding.Mesh
  replicated: NamedSharding
  batch: NamedSharding

  @property
  def num_devices(self) -> int:
    return self.mesh.devices.size

  def put_batch(self, global_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Places a global host batch: each process passes the same global batch, keeps its rows."""
    n = jax.process_count()
    out = {}
    for k, v in global_batch.items():
      rows = v.shape[0] // n
      local = v[jax.process_index() * rows : (jax.process_index() + 1) * rows]
      out[k] = jax.make_array_from_process_local_data(self.batch, local, v.shape)
    return out

  def put_replicated(self, tree: Any) -> Any:
    return jax.device_put(tree, self.replicated)


def make_placement() -> Placement:
  mesh = jax.make_mesh(
    (jax.device_count(),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,)
  )
  return Placement(
    mesh=mesh,
    replicated=NamedSharding(mesh, PartitionSpec()),
    batch=NamedSharding(mesh, PartitionSpec(DATA_AXIS)),
  )
