"""Thread counts: the CPUs this process may use, and the size of XLA's CPU thread pool.

XLA:CPU splits work over its intra-op pool, and the bits of a result depend on the pool's size;
so do oneDNN's weight gradients on its thread count. Both are set from `config.runtime.threads`
(see `lrjax.runtime.setup`): XLA's pool through `PJRT_NPROC`, read once when JAX starts its CPU
client, oneDNN's by the convolution handlers themselves.
"""

from __future__ import annotations

import os

POOL_ENV = "PJRT_NPROC"
_POOL_THREAD = "XLAEigen"  # the name XLA:CPU gives its intra-op threads


def available_cpus() -> int:
  """The CPUs this process may run on (its affinity mask, as Slurm and taskset set it)."""
  try:
    return len(os.sched_getaffinity(0))
  except (AttributeError, OSError):  # not on Linux
    return os.cpu_count() or 1


def xla_pool_size() -> int | None:
  """The threads of XLA's CPU pool in this process: 0 before JAX has started its CPU client,
  None where this cannot be read (no /proc, or thread names not as XLA gives them today)."""
  try:
    tasks = os.listdir("/proc/self/task")
  except OSError:
    return None
  count = 0
  for task in tasks:
    try:
      with open(f"/proc/self/task/{task}/comm") as f:
        count += _POOL_THREAD in f.read()
    except OSError:  # the thread ended meanwhile
      continue
  return count


def counted(n: int, thing: str = "thread") -> str:
  """`n` things in words: "1 thread", "2 threads"."""
  return f"{n} {thing}" + ("" if n == 1 else "es" if thing.endswith("s") else "s")
