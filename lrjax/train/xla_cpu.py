"""XLA:CPU settings that make lrjax's train step faster on a CPU, without changing its maths.

Measured on the ResNet-20 train step (batch 128, 2 cores; `python benchmarks/run.py` keeps the
figure): XLA's CPU defaults spend over a third of the step in transposes that re-compute whole
chains of batch-norm and residual arithmetic, because its fusion duplicates an elementwise
producer into every consumer, and it sends convolutions to a library that needs those transposes.
Two settings remove most of that:

* multi-output fusion (`xla_cpu_use_multi_output_fusion`, a backend option read from
  `XLA_FLAGS` when JAX starts its backends): one fusion computes a value for all its consumers
  instead of each consumer re-computing it. `tune()` sets it; `lrjax`'s command line calls
  `tune()` first thing, and a script can too, before its first JAX computation.
* convolutions through XLA's own (Eigen) kernels, with only reductions handed to the library
  (`xla_cpu_experimental_ynn_fusion_type`): a per-compilation option, so `compiler_options()`
  gives it to the jitted train and eval steps, where this jaxlib knows it and the backend is CPU.

Both are ordinary, tested XLA code paths: the results differ from the defaults only by float
rounding. A third setting is the C library's, not XLA's:

* freed memory kept for reuse (`keep_freed_memory`): XLA:CPU takes each execution's temporary
  buffer from `malloc` (388 MB for a ResNet-20 step at batch 128) and frees it afterwards.
  glibc serves a block that large from a fresh `mmap` every time, so every step paid a page
  fault for each 4 KiB it touched: 95,000 faults, a quarter to a third of the step on 2 cores.
  With one malloc arena, no `mmap` and no trimming, once the heap has grown to its peak (over
  the first few dozen steps) a step reuses the pages of the one before: the process keeps its
  peak memory, as PyTorch's allocator does. `tune()` sets it.

Set `LRJAX_XLA_CPU_TUNING=0` to keep XLA's and glibc's defaults.

JAX accepts compiler options only on a top-level `jax.jit`: on CPU, trace lrjax's jitted steps
with their own `.trace(...)` or `.lower(...)`, not inside another `jit` or `jax.make_jaxpr`.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
from collections.abc import MutableMapping

import jax
import numpy as np

from lrjax.train import jax_compat

MULTI_OUTPUT_FUSION = "--xla_backend_extra_options=xla_cpu_use_multi_output_fusion"
CONVOLUTIONS_IN_XLA = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}
OPT_OUT = "LRJAX_XLA_CPU_TUNING"

# Accelerator plugins: where one is installed the CPU backend is not the one that trains, so
# leave its flags alone.
_ACCELERATOR_MODULES = ("jax_plugins", "jax_cuda12_plugin", "jax_cuda13_plugin", "libtpu")


def _enabled(environ: MutableMapping[str, str]) -> bool:
  return environ.get(OPT_OUT, "1").strip().lower() not in ("0", "false", "no", "off")


def _cpu_only(environ: MutableMapping[str, str]) -> bool:
  platforms = environ.get("JAX_PLATFORMS", "").strip().lower()
  if platforms:
    return platforms == "cpu"
  return not any(importlib.util.find_spec(m) is not None for m in _ACCELERATOR_MODULES)


# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def keep_freed_memory(environ: MutableMapping[str, str] | None = None) -> bool:
  """Makes glibc's malloc keep freed memory for reuse; True if it did.

  One arena (a thread's own arena cannot hold a block over 64 MB, so it would `mmap` it), no
  `mmap`, and no trimming of the heap's top below 2 GiB. Call it before JAX starts its threads:
  a thread picks its arena once. Does nothing (False) off glibc, or when the user has tuned
  malloc already (`GLIBC_TUNABLES` naming malloc, or a `MALLOC_*_` variable).
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


def tune(environ: MutableMapping[str, str] | None = None) -> bool:
  """Adds multi-output fusion to `XLA_FLAGS` and keeps freed memory; True if it set the flag.

  Does nothing (False) after JAX has started its backends (flags are read once, then), when an
  accelerator plugin is installed and `JAX_PLATFORMS` does not say "cpu", or when
  `LRJAX_XLA_CPU_TUNING=0`; leaves the flag alone (False) when `XLA_FLAGS` already sets backend
  options (the user's choice stands).
  """
  environ = os.environ if environ is None else environ
  if not _enabled(environ) or not _cpu_only(environ) or jax_compat.backends_started():
    return False
  keep_freed_memory(environ)
  flags = environ.get("XLA_FLAGS", "")
  if "xla_backend_extra_options" in flags:
    return False
  environ["XLA_FLAGS"] = f"{flags} {MULTI_OUTPUT_FUSION}".strip()
  return True


@functools.lru_cache(maxsize=1)
def compiler_options() -> dict[str, str]:
  """Per-compilation options for lrjax's jitted steps: the convolution setting on CPU, else {}.

  Probed once by compiling a trivial function with them, because an option this jaxlib does
  not know is an error (another JAX version may have renamed it): then {} and XLA's defaults.
  """
  if not _enabled(os.environ) or jax.default_backend() != "cpu":
    return {}
  try:
    jax.jit(lambda x: x + 1, compiler_options=CONVOLUTIONS_IN_XLA).lower(np.float32(0)).compile()
  except jax.errors.JaxRuntimeError:  # an option this jaxlib does not know
    return {}
  return dict(CONVOLUTIONS_IN_XLA)
