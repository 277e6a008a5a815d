"""Freed memory kept for reuse: glibc's malloc set so that a train step reuses its pages.

XLA:CPU takes each execution's temporary buffer from `malloc` (388 MB for a ResNet-20 step at
batch 128) and frees it afterwards. glibc serves a block that large from a fresh `mmap` every
time, so every step paid a page fault for each 4 KiB it touched: 95,000 faults, a quarter to a
third of the step on 2 cores. With one malloc arena, no `mmap` and no trimming, once the heap has
grown to its peak (over the first few dozen steps) a step reuses the pages of the one before: the
process keeps its peak memory, as PyTorch's allocator does. It changes no result.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def keep_freed_memory(environ: Mapping[str, str] | None = None) -> bool:
  """Makes glibc's malloc keep freed memory for reuse; True if it did.

  One arena (a thread's own arena cannot hold a block over 64 MB, so it would `mmap` it), no
  `mmap`, and no trimming of the heap's top below 2 GiB. Best before JAX starts its threads (a
  thread picks its arena once). Does nothing (False) off glibc, or when the user has tuned malloc
  already (`GLIBC_TUNABLES` naming malloc, or a `MALLOC_*_` variable).
  """
  environ = os.environ if environ is None else environ
  if "glibc.malloc" in environ.get("GLIBC_TUNABLES", "") or any(
    k.startswith("MALLOC_") and k.endswith("_") for k in environ
  ):
    return False
  try:
    libc = ctypes.CDLL(None)
  except OSError:
    return False
  if not hasattr(libc, "gnu_get_libc_version"):  # musl's mallopt does nothing
    return False
  settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
  return all(libc.mallopt(k, v) == 1 for k, v in settings)
