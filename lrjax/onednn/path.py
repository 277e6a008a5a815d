"""Which convolution path runs: oneDNN's, or XLA's own; decided once per process.

oneDNN runs when the default JAX backend is the CPU, `LRJAX_ONEDNN` is not 0/false/off, and the
handlers build (see `build.load`). The first model that asks writes one line to stderr naming
the path and, for XLA's, why; `status()` returns the same line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

import jax
import jax.numpy as jnp

from lrjax.onednn import build

OPT_OUT = "LRJAX_ONEDNN"
_xla_only = False  # set by `xla_only()`, read when a model is traced


def enabled() -> bool:
  """False when `LRJAX_ONEDNN` says 0, false, no or off."""
  return os.environ.get(OPT_OUT, "1").strip().lower() not in ("0", "false", "no", "off")


@functools.lru_cache(maxsize=1)
def library() -> build.Library | build.Unavailable:
  if not enabled():
    return build.Unavailable(f"{OPT_OUT}={os.environ[OPT_OUT]}")
  if jax.default_backend() != "cpu":
    return build.Unavailable(f"the default backend is {jax.default_backend()}, not the CPU")
  return build.load()


def status() -> str:
  """One line: the convolution path this process uses, e.g. for a run's log."""
  lib = library()
  if isinstance(lib, build.Unavailable):
    return f"convolutions: XLA (oneDNN off: {lib.reason})"
  bf16 = "float32 and bfloat16" if lib.bf16 else "float32 (bfloat16 through XLA)"
  return f"convolutions: oneDNN {lib.version}, {bf16} (LRJAX_ONEDNN=0 for XLA's)"


@functools.lru_cache(maxsize=1)
def announce() -> None:
  print(status(), file=sys.stderr, flush=True)


@contextlib.contextmanager
def xla_only():
  """Functions traced inside use XLA's convolution: to compare both paths in one process."""
  global _xla_only
  before, _xla_only = _xla_only, True
  try:
    yield
  finally:
    _xla_only = before


def runs(dtype) -> bool:
  """Whether a convolution of `dtype` goes through oneDNN (when traced here and now)."""
  lib = library()
  announce()
  if isinstance(lib, build.Unavailable) or _xla_only:
    return False
  return dtype == jnp.float32 or (dtype == jnp.bfloat16 and lib.bf16)
