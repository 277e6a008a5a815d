"""`setup`: applies a config's runtime to this process, once, and says what it applied.

Every way lrjax runs a config reaches this one function: the Python API (`lrjax.train`, a study,
the range test) calls it before it builds anything, the command line through the Python API, and
every executor's worker before its cell. What it sets:

* for the process, before JAX starts its CPU backend (XLA reads these once, then): the size of
  XLA's CPU thread pool (`PJRT_NPROC`), multi-output fusion (`XLA_FLAGS`), glibc's malloc keeping
  freed memory; and a multi-host run's `jax.distributed` where the environment asks (it must
  also come first);
* for each model: its convolution, oneDNN's (with its thread count) or XLA's, and each jitted
  step's compiler options (`Runtime.convolution`, `Runtime.compiler_options`).

The process part cannot change once JAX has started: a second `setup` that asks for another
thread count or XLA tuning, or a first one after JAX started otherwise, raises `RuntimeMismatch`
instead of running under settings the record would not show.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
from jax import lax

from lrjax.onednn import build as onednn_build
from lrjax.onednn.conv import Convolution
from lrjax.runtime import devices, memory, threads, xla_cpu
from lrjax.runtime.spec import RuntimeMismatch, Spec


@dataclasses.dataclass(frozen=True)
class Runtime:
  """The runtime a config runs under, resolved ("auto" and 0 replaced by what was applied)."""

  convolutions: str  # "onednn" or "xla"
  threads: int
  xla_cpu_tuning: bool
  keep_freed_memory: bool
  platform: str
  onednn: str | None = None  # oneDNN's version where its convolutions run
  why_xla: str = ""  # why "auto" gave XLA's convolutions

  def spec(self) -> Spec:
    """The resolved `config.runtime`: what a cell's or a resumed run's config carries."""
    return Spec(self.convolutions, self.threads, self.xla_cpu_tuning, self.keep_freed_memory)

  def record(self) -> dict[str, Any]:
    """What `config.json` and `summary.json` record."""
    out = dataclasses.asdict(self)
    if not out["why_xla"]:
      del out["why_xla"]
    return out

  def convolution(self) -> Any:
    """The `conv_general_dilated` for lrjax's models (a hashable value: one compile each)."""
    if self.convolutions == "onednn":
      lib = onednn_build.load()
      return Convolution(self.threads, bf16=bool(getattr(lib, "bf16", False)))
    return lax.conv_general_dilated

  def compiler_options(self) -> dict[str, str]:
    return xla_cpu.compiler_options(self.xla_cpu_tuning)

  def status(self) -> str:
    """One line, for a run's log."""
    if self.convolutions == "onednn":
      conv = f"oneDNN {self.onednn}"
    else:
      conv = "XLA" + (f" (oneDNN off: {self.why_xla})" if self.why_xla else "")
    tuning = "tuned" if self.xla_cpu_tuning else "XLA's defaults"
    return (
      f"runtime: convolutions {conv}, {threads.counted(self.threads)}, {tuning}, {self.platform}"
    )


@dataclasses.dataclass(frozen=True)
class _Process:
  threads: int | None  # XLA's pool (None: not on a CPU backend)
  xla_cpu_tuning: bool
  keep_freed_memory: bool


_process: _Process | None = None  # what this process was set up with; it cannot change after


def setup(spec: Any = None) -> Runtime:
  """Applies `spec` (a `Spec`, or `config.runtime` as a dict; None: the defaults) and returns
  the resolved `Runtime`. Idempotent for the same process settings. A multi-process run is
  joined first where the environment asks (`JAX_COORDINATOR_ADDRESS` etc., or
  `LRJAX_DISTRIBUTED=1`; see `lrjax.runtime.devices`), or where the caller joined it already.

  Raises:
    ValueError: a bad field (naming it).
    RuntimeMismatch: settings this process cannot take (see the module docstring), or
      `convolutions="onednn"` where oneDNN cannot run.
  """
  spec = Spec.of(spec)
  cpu = xla_cpu.cpu_only(os.environ)
  count = spec.threads or threads.available_cpus()
  process = _apply(spec, count, cpu)
  platform = jax.default_backend()
  conv, version, why = _convolutions(spec.convolutions, platform)
  return Runtime(
    convolutions=conv,
    threads=count,
    xla_cpu_tuning=spec.xla_cpu_tuning,
    keep_freed_memory=process.keep_freed_memory,
    platform=platform,
    onednn=version,
    why_xla=why,
  )


def _apply(spec: Spec, count: int, cpu: bool) -> _Process:
  global _process
  want = _Process(count if cpu else None, spec.xla_cpu_tuning, spec.keep_freed_memory)
  if _process is not None:
    if (_process.threads, _process.xla_cpu_tuning) != (want.threads, want.xla_cpu_tuning):
      raise RuntimeMismatch(
        f"this process runs with {_describe(_process)} already; config.runtime asks for "
        f"{_describe(want)}, which only a new process can take"
      )
    return _process
  pool = threads.xla_pool_size()
  flags = os.environ.get("XLA_FLAGS", "")
  if pool:  # JAX started its CPU client before setup: check instead of set
    found = _Process(pool if cpu else None, xla_cpu.tuned(flags), False)
    if cpu and (found.threads, found.xla_cpu_tuning) != (want.threads, want.xla_cpu_tuning):
      raise RuntimeMismatch(
        f"JAX started before lrjax.runtime.setup, with {_describe(found)}; config.runtime asks "
        f"for {_describe(want)}: call lrjax.runtime.setup(config.runtime) before any JAX "
        "computation, or set config.runtime to what this process has"
      )
  elif cpu:
    os.environ[threads.POOL_ENV] = str(count)
    if spec.xla_cpu_tuning:
      os.environ["XLA_FLAGS"] = xla_cpu.flags_with_tuning(flags)
    elif xla_cpu.tuned(flags):
      raise RuntimeMismatch(
        "XLA_FLAGS turns multi-output fusion on, but config.runtime.xla_cpu_tuning is false: "
        "remove it from XLA_FLAGS, or set config.runtime.xla_cpu_tuning=True"
      )
  kept = spec.keep_freed_memory and memory.keep_freed_memory()
  devices.maybe_initialize_distributed()
  jax.devices()  # start the backends now, under these settings
  _process = dataclasses.replace(want, keep_freed_memory=kept)
  return _process


def _describe(p: _Process) -> str:
  pool = f"{p.threads} XLA threads" if p.threads else "no CPU backend settings"
  return f"{pool} and xla_cpu_tuning={p.xla_cpu_tuning}"


def _convolutions(asked: str, platform: str) -> tuple[str, str | None, str]:
  """(path, oneDNN's version or None, why XLA's where "auto" gave it)."""
  if asked == "xla":
    return "xla", None, ""
  if platform != "cpu":
    reason = f"the backend is {platform}, not the CPU"
    lib = onednn_build.Unavailable(reason)
  else:
    lib = onednn_build.load()
  if isinstance(lib, onednn_build.Unavailable):
    if asked == "onednn":
      raise RuntimeMismatch(f"config.runtime.convolutions='onednn', but {lib.reason}")
    return "xla", None, lib.reason
  return "onednn", lib.version, ""
