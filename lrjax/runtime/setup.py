"""`setup`: applies a config's runtime to this process, once, at its entry point.

The one call that changes the process, made once where a process starts: the command line's
`main` (after reading the runtime a resumed run or study started with), each executor's worker
as it starts, and, for the Python API, the user (`lrjax.runtime.setup(config.runtime)` before
the first run). What it sets:

* for the process, before JAX starts its CPU backend (XLA reads these once, then): the size of
  XLA's CPU thread pool (`PJRT_NPROC`), multi-output fusion (`XLA_FLAGS`), glibc's malloc keeping
  freed memory; a multi-host run's `jax.distributed` where the environment asks (it must also
  come first); and oneDNN's convolutions, built (once per machine) and loaded here;
* where a study asks, the folder of its compiled programs (`lrjax.runtime.compile_cache`),
  shared with the processes this one starts;
* for each run, what `for_run(spec)` resolves without changing anything: its convolution,
  oneDNN's (with its thread count) or XLA's, and each jitted step's compiler options
  (`Runtime.convolution`, `Runtime.compiler_options`).

Building or training a run never calls `setup`: it asks `for_run`, which refuses (one line) a
spec this process cannot take (another thread count or XLA tuning: only a new process can), and
says so where the process has not been set up at all.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
from jax import lax

from lrjax.onednn import build as onednn_build
from lrjax.onednn.conv import Convolution
from lrjax.runtime import compile_cache, devices, memory, threads, xla_cpu
from lrjax.runtime.spec import RuntimeMismatch, Spec


@dataclasses.dataclass(frozen=True)
class Runtime:
  """The runtime a config runs under, resolved ("auto" and 0 replaced by what was applied).

  Attributes:
    convolutions: "onednn" or "xla".
    threads: XLA's CPU pool and oneDNN's thread count.
    xla_cpu_tuning: multi-output fusion and XLA's own convolution kernels.
    keep_freed_memory: glibc's malloc keeps freed memory for the next step.
    platform: JAX's default backend ("cpu", "gpu", "tpu").
    onednn: oneDNN's version where its convolutions run, else None.
    why_xla: why "auto" gave XLA's convolutions ("" where it did not).
  """

  convolutions: str
  threads: int
  xla_cpu_tuning: bool
  keep_freed_memory: bool
  platform: str
  onednn: str | None = None
  why_xla: str = ""

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
      lib = onednn_build.loaded()  # loaded by `setup`: nothing is built here
      return Convolution(self.threads, bf16=bool(getattr(lib, "bf16", False)))
    return lax.conv_general_dilated

  def compiler_options(self) -> dict[str, str]:
    """The per-compilation options of lrjax's jitted steps (`lrjax.runtime.xla_cpu`)."""
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


class RuntimeNotSetUp(RuntimeError):
  """A run was built in a process that `lrjax.runtime.setup` has not set up."""


@dataclasses.dataclass(frozen=True)
class _Process:
  threads: int | None  # XLA's pool (None: not on a CPU backend)
  count: int  # the thread count runs use (oneDNN's too)
  xla_cpu_tuning: bool
  keep_freed_memory: bool


_process: _Process | None = None  # what `setup` applied to this process; it cannot change after


def setup(spec: Any = None, *, compiled: str | None = None) -> Runtime:
  """Sets this process up for `spec` and returns the resolved `Runtime` (see the module
  docstring). Called again with the same process settings it changes nothing and returns the
  runtime for `spec`. A multi-process run is joined first where the environment asks
  (`JAX_COORDINATOR_ADDRESS` etc., or `LRJAX_DISTRIBUTED=1`; see `lrjax.runtime.devices`), or
  where the caller joined it already.

  Args:
    spec: a `Spec`, or `config.runtime` as a dict (None: the defaults).
    compiled: a folder for the programs this process and those it starts compile (a study's
      `<workdir>/compiled`; see `lrjax.runtime.compile_cache`). None: JAX's own settings. Taken
      by the first `setup` of a process only, like the rest.

  Raises:
    ValueError: a bad field (naming it).
    RuntimeMismatch: settings this process cannot take (another thread count or XLA tuning than
      it was set up with, or than JAX started with before `setup`), or
      `convolutions="onednn"` where oneDNN cannot run.
  """
  spec = Spec.of(spec)
  cpu = xla_cpu.cpu_only(os.environ)
  count = spec.threads or threads.available_cpus()
  if _process is None:
    if compiled is not None:
      compile_cache.use(compiled)  # before the first compilation
    _apply(spec, count, cpu)
  return for_run(spec)


def active() -> bool:
  """Whether `setup` has set this process up."""
  return _process is not None


def for_run(spec: Any = None, *, elsewhere: bool = False) -> Runtime:
  """The `Runtime` a run asking for `spec` gets in this process, which `setup` has set up;
  changes nothing. Fields left at "auto" or 0 take the process's values.

  Args:
    spec: a `Spec`, or `config.runtime` as a dict (None: the process's own).
    elsewhere: resolve the runtime of a run in another process set up with `spec` on this
      machine (a study's workers), without requiring this process to run the same threads.

  Raises:
    RuntimeNotSetUp: `setup` has not been called in this process.
    RuntimeMismatch: `spec` asks for another thread count or XLA tuning than the process has
      (only a new process can take them), or for oneDNN's convolutions where they cannot run.
  """
  if _process is None:
    raise RuntimeNotSetUp(
      "this process has not been set up for training: call lrjax.runtime.setup(config.runtime) "
      "once at its start, before any JAX computation (the command line does)"
    )
  spec = Spec.of(spec)
  kept = spec.keep_freed_memory if elsewhere else _process.keep_freed_memory
  want = _Process(None, spec.threads or _process.count, spec.xla_cpu_tuning, kept)
  same = (want.count, want.xla_cpu_tuning) == (_process.count, _process.xla_cpu_tuning)
  if not same and not elsewhere:
    raise RuntimeMismatch(
      f"this process runs with {_describe(_process)} already; config.runtime asks for "
      f"{_describe(want)}, which only a new process can take"
    )
  platform = jax.default_backend()
  conv, version, why = _convolutions(spec.convolutions, platform)
  return Runtime(
    convolutions=conv,
    threads=want.count,
    xla_cpu_tuning=want.xla_cpu_tuning,
    keep_freed_memory=want.keep_freed_memory,
    platform=platform,
    onednn=version,
    why_xla=why,
  )


def _apply(spec: Spec, count: int, cpu: bool) -> None:
  global _process
  want = _Process(count if cpu else None, count, spec.xla_cpu_tuning, spec.keep_freed_memory)
  pool = threads.xla_pool_size()
  flags = os.environ.get("XLA_FLAGS", "")
  if pool:  # JAX started its CPU client before setup: check instead of set
    found = _Process(pool if cpu else None, pool, xla_cpu.tuned(flags), False)
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
  if spec.convolutions != "xla" and jax.default_backend() == "cpu":
    onednn_build.load()  # built once per machine, loaded here: never while a step is traced
  _process = dataclasses.replace(want, keep_freed_memory=kept)


def _describe(p: _Process) -> str:
  return f"{threads.counted(p.count, 'XLA thread')} and xla_cpu_tuning={p.xla_cpu_tuning}"


def _convolutions(asked: str, platform: str) -> tuple[str, str | None, str]:
  """(path, oneDNN's version or None, why XLA's where "auto" gave it)."""
  if asked == "xla":
    return "xla", None, ""
  if platform != "cpu":
    lib = onednn_build.Unavailable(f"the backend is {platform}, not the CPU")
  else:
    lib = onednn_build.loaded() or onednn_build.Unavailable(
      "this process was set up with XLA's convolutions (config.runtime.convolutions='xla')"
    )
  if isinstance(lib, onednn_build.Unavailable):
    if asked == "onednn":
      raise RuntimeMismatch(f"config.runtime.convolutions='onednn', but {lib.reason}")
    return "xla", None, lib.reason
  return "onednn", lib.version, ""
