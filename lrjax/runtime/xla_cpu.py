"""XLA:CPU settings that make lrjax's train step faster on a CPU.

Measured on the ResNet-20 train step (batch 128, 2 cores; `python benchmarks/run.py` keeps the
figure): XLA's CPU defaults spend over a third of the step in transposes that re-compute whole
chains of batch-norm and residual arithmetic, because its fusion duplicates an elementwise
producer into every consumer, and it sends convolutions to a library that needs those transposes.
Two settings remove most of that:

* multi-output fusion (`xla_cpu_use_multi_output_fusion`, a backend option that XLA reads from
  `XLA_FLAGS` once, when JAX starts its backends): one fusion computes a value for all its
  consumers instead of each consumer re-computing it. `flags_with_tuning` adds it;
  `lrjax.runtime.setup` sets it before the backends start.
* convolutions through XLA's own (Eigen) kernels, with only reductions handed to the library
  (`xla_cpu_experimental_ynn_fusion_type`): a per-compilation option, so `compiler_options()`
  gives it to the jitted steps where this jaxlib knows it and the backend is CPU.

Both are ordinary, tested XLA code paths; `config.runtime.xla_cpu_tuning=False` keeps XLA's
defaults (results then differ by float rounding). JAX accepts compiler options only on a
top-level `jax.jit`: on CPU, trace lrjax's jitted steps with their own `.trace(...)` or
`.lower(...)`, not inside another `jit` or `jax.make_jaxpr`.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping

import jax
import numpy as np

MULTI_OUTPUT_FUSION = "xla_cpu_use_multi_output_fusion"
BACKEND_OPTIONS = "--xla_backend_extra_options"
CONVOLUTIONS_IN_XLA = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}

# Accelerator plugins: where one is installed the CPU backend is not the one that trains.
_ACCELERATOR_MODULES = ("jax_plugins", "jax_cuda12_plugin", "jax_cuda13_plugin", "libtpu")


def cpu_only(environ: Mapping[str, str]) -> bool:
  """Whether JAX will train on the CPU: `JAX_PLATFORMS=cpu`, or no accelerator plugin."""
  platforms = environ.get("JAX_PLATFORMS", "").strip().lower()
  if platforms:
    return platforms == "cpu"
  return not any(importlib.util.find_spec(m) is not None for m in _ACCELERATOR_MODULES)


def tuned(flags: str) -> bool:
  """Whether `XLA_FLAGS` text `flags` turns multi-output fusion on."""
  return MULTI_OUTPUT_FUSION in flags


def flags_with_tuning(flags: str) -> str:
  """`XLA_FLAGS` text `flags` with multi-output fusion added to its backend options.

  Raises:
    ValueError: `flags` sets other backend options already (the user's choice: lrjax does not
      rewrite it).
  """
  if tuned(flags):
    return flags
  if "xla_backend_extra_options" in flags:
    raise ValueError(
      f"XLA_FLAGS sets xla_backend_extra_options already ({flags!r}): add "
      f"{MULTI_OUTPUT_FUSION} to it, or set config.runtime.xla_cpu_tuning=False"
    )
  return f"{flags} {BACKEND_OPTIONS}={MULTI_OUTPUT_FUSION}".strip()


@functools.lru_cache(maxsize=1)
def _known_options() -> dict[str, str]:
  # Probed once by compiling a trivial function: an option this jaxlib does not know is an error
  # (another JAX version may have renamed it), and then XLA's defaults apply.
  try:
    jax.jit(lambda x: x + 1, compiler_options=CONVOLUTIONS_IN_XLA).lower(np.float32(0)).compile()
  except jax.errors.JaxRuntimeError:
    return {}
  return dict(CONVOLUTIONS_IN_XLA)


def compiler_options(tuning: bool) -> dict[str, str]:
  """Per-compilation options for lrjax's jitted steps: with `tuning` on a CPU backend, the
  convolution setting (where this jaxlib knows it); else {}."""
  if not tuning or jax.default_backend() != "cpu":
    return {}
  return _known_options()
