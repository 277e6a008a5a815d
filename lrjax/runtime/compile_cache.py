"""A study's compiled programs, kept in its folder and shared by every process that trains it.

A study runs the same programs many times: every seed of an arm at one learning rate runs the
same train step (a seed is data, the initial parameters and the batch order, never a constant
of the program), and every cell the same evaluation step. One process compiles each once
(`lrjax.train.step` keeps them); a study has many processes: the workers of `--executor local`
or Ray each compile what their cells need, a Slurm job or a resumed study starts afresh. JAX's
persistent compilation cache keeps each compiled program on disk, keyed by the program, the
compiler options, XLA's flags and the versions; `use(folder)` points this process at `folder`
and exports the setting to the processes it starts (local workers, a local Ray cluster, Slurm
jobs, which inherit the environment), so a program is compiled once per study. The study's
folder is `<workdir>/compiled` (`lrjax.compare.folders.compiled_dir`).

A program loaded from the cache computes the same bits as one compiled afresh (tested: a study's
parameters with and without the cache). The cache is only a saving: delete the folder at any
time. Where `JAX_COMPILATION_CACHE_DIR` is set already, that cache is used instead; with
`JAX_ENABLE_COMPILATION_CACHE=false`, none is (how `benchmarks/compile_cache.py` measures the
saving).
"""

from __future__ import annotations

import os

import jax

DIR_ENV = "JAX_COMPILATION_CACHE_DIR"
ENABLE_ENV = "JAX_ENABLE_COMPILATION_CACHE"
# A program worth keeping takes this long to compile: the train, evaluation and init steps (a
# second or more on a CPU), not the small programs of single array operations, which would fill
# the folder with thousands of entries that load no faster than they compile.
MIN_COMPILE_SECONDS = 0.2
# A size limit turns on JAX's file lock (the `filelock` package, which [train] brings), which the
# study's concurrent workers want: without one, a worker can read an entry another is still
# writing, and JAX then warns and compiles the program itself. Old entries go first past it.
MAX_BYTES = 2 * 1024**3


def use(folder: str) -> str | None:
  """Keeps this process's compiled programs in `folder` (see the module docstring); returns the
  folder in use: the user's own `JAX_COMPILATION_CACHE_DIR` where one is set, None where the
  cache is turned off. Call it before the first compilation (`lrjax.runtime.setup` does)."""
  if not isinstance(folder, str) or not folder:
    raise ValueError(f"folder must be a non-empty path, got {folder!r}")
  if os.environ.get(ENABLE_ENV, "").lower() in ("0", "false", "no"):
    return None
  if os.environ.get(DIR_ENV):
    return os.environ[DIR_ENV]
  folder = os.path.abspath(folder)
  os.makedirs(folder, exist_ok=True)
  settings = {
    DIR_ENV: ("jax_compilation_cache_dir", folder),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": (
      "jax_persistent_cache_min_compile_time_secs",
      MIN_COMPILE_SECONDS,
    ),
  }
  if _has_filelock():
    settings["JAX_COMPILATION_CACHE_MAX_SIZE"] = ("jax_compilation_cache_max_size", MAX_BYTES)
  for env, (option, value) in settings.items():
    # JAX read the environment when it was imported: this process takes the options, the
    # processes it starts take the environment.
    os.environ[env] = str(value)
    jax.config.update(option, value)
  return folder


def environment() -> dict[str, str]:
  """The cache's settings in this process's environment: what a worker started elsewhere (a Ray
  cluster joined by address) must be given to share the cache."""
  names = (
    DIR_ENV,
    ENABLE_ENV,
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_COMPILATION_CACHE_MAX_SIZE",
  )
  return {n: os.environ[n] for n in names if n in os.environ}


def _has_filelock() -> bool:
  try:
    import filelock  # noqa: F401
  except ImportError:
    return False
  return True
