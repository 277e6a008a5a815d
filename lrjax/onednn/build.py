"""Finds oneDNN, compiles `conv.cc` against it on first use, and registers its FFI handlers.

The compiled library is cached under `$LRJAX_ONEDNN_CACHE` (default `~/.cache/lrjax`) in a folder
named by a hash of everything that shapes it (the source, the jaxlib and oneDNN it is built
against, the compiler), so an upgrade of either builds afresh and a second process only loads it.
Nothing here raises: every way to fail (no compiler, no oneDNN, a failed build, a oneDNN whose
thread count the handlers cannot fix) gives a reason, and the runtime then chooses XLA's
convolution (`lrjax.runtime`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax

SOURCE = Path(__file__).with_name("conv.cc")
TARGETS = {
  "lrjax_onednn_conv_fwd": "LrjaxOnednnConvFwd",
  "lrjax_onednn_conv_bwd_data": "LrjaxOnednnConvBwdData",
  "lrjax_onednn_conv_bwd_weights": "LrjaxOnednnConvBwdWeights",
}
# The C++ uses oneDNN 3's primitive-descriptor constructors; Debian's libdnnl-dev 2.6 lacks them.
MIN_MAJOR = 3
# oneDNN 3.2 for CPUs, threaded by GNU OpenMP: part of [train] on Linux x86-64.
INSTALL = "pip install 'lrjax[onednn-cpu]' (oneDNN 3.2 for CPUs, 158 MB)"


@dataclasses.dataclass(frozen=True)
class Library:
  """A loaded, registered build: its path, oneDNN's version and threading runtime, whether bf16
  convolutions run."""

  path: Path
  version: str
  bf16: bool
  threading: str = "OpenMP"


@dataclasses.dataclass(frozen=True)
class Unavailable:
  """Why the oneDNN path is off, in words for the one-line log."""

  reason: str


def _prefixes() -> list[Path]:
  # pip's `onednn-devel` puts include/ and lib/ under the environment's prefix (data files);
  # `pip install --user` under the user base; a system package under /usr or /usr/local.
  import site

  roots = [
    os.environ.get("LRJAX_ONEDNN_ROOT"),
    sys.prefix,
    site.getuserbase(),
    "/usr/local",
    "/usr",
  ]
  return [Path(r) for r in dict.fromkeys(r for r in roots if r)]


def _header_version(include: Path) -> tuple[int, int, int] | None:
  text = (include / "oneapi" / "dnnl" / "dnnl_version.h").read_text()
  parts = [re.search(rf"#define DNNL_VERSION_{k} (\d+)", text) for k in ("MAJOR", "MINOR", "PATCH")]
  if not all(parts):
    return None
  return tuple(int(p.group(1)) for p in parts)  # type: ignore[union-attr, return-value]


def find_onednn() -> tuple[Path, Path, tuple[int, int, int]] | str:
  """(include dir, lib dir, version) of the first oneDNN >= 3 found, or why none was."""
  seen = []
  for root in _prefixes():
    include = root / "include"
    if not (include / "oneapi" / "dnnl" / "dnnl.hpp").is_file():
      continue
    for lib in (root / "lib", root / "lib64", root / "lib" / "x86_64-linux-gnu"):
      if (lib / "libdnnl.so").exists():
        version = _header_version(include)
        if version and version[0] >= MIN_MAJOR:
          return include, lib, version
        seen.append(f"{root} has oneDNN {version}")
  found = "; ".join(seen) or "no oneDNN headers and libdnnl.so"
  return f"{found} (need oneDNN >= {MIN_MAJOR}: {INSTALL})"


def find_compiler() -> str | None:
  for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
    if name and shutil.which(name):
      return shutil.which(name)
  return None


def cache_root() -> Path:
  env = os.environ.get("LRJAX_ONEDNN_CACHE")
  if env:
    return Path(env)
  base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
  return Path(base) / "lrjax"


def _command(compiler: str, include: Path, lib: Path) -> list[str]:
  return [
    compiler, "-O2", "-std=c++17", "-fPIC", "-shared", "-w", str(SOURCE),
    f"-I{jax.ffi.include_dir()}", f"-I{include}", f"-L{lib}", "-ldnnl",
    # DT_RPATH, not RUNPATH: it also finds libdnnl's own dependencies (TBB, SYCL) in `lib`.
    f"-Wl,--disable-new-dtags,-rpath,{lib}",
  ]  # fmt: skip


def _compile(command: list[str], out: Path) -> str | None:
  """Builds `out` (atomically: parallel test workers may build at once); an error text or None."""
  out.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
  os.close(fd)
  try:
    proc = subprocess.run([*command, "-o", tmp], capture_output=True, text=True, timeout=600)
  except (OSError, subprocess.TimeoutExpired) as e:
    os.unlink(tmp)
    return str(e)
  if proc.returncode:
    os.unlink(tmp)
    return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc {proc.returncode}"
  os.replace(tmp, out)
  return None


def loaded() -> Library | Unavailable | None:
  """What `load` gave in this process, or None before it was called (nothing is built here)."""
  return load() if load.cache_info().currsize else None


@functools.lru_cache(maxsize=1)
def load() -> Library | Unavailable:
  """Builds (once per cache folder) and loads the handlers, registering them for the CPU: what
  `lrjax.runtime.setup` calls once per process."""
  found = find_onednn()
  if isinstance(found, str):
    return Unavailable(found)
  include, lib, version = found
  compiler = find_compiler()
  if compiler is None:
    return Unavailable("no C++ compiler (set CXX, or install g++)")
  command = _command(compiler, include, lib)
  key = hashlib.sha256(SOURCE.read_bytes())
  for part in (*command, jax.__version__, str(version)):
    key.update(part.encode())
  path = cache_root() / f"onednn-{key.hexdigest()[:16]}" / "conv.so"
  if not path.exists():
    error = _compile(command, path)
    if error:
      return Unavailable(f"building {SOURCE.name} failed: {error}")
  try:
    handle = ctypes.CDLL(str(path))
    handle.lrjax_onednn_threading.restype = ctypes.c_char_p
    threading = handle.lrjax_onednn_threading().decode()
    if not handle.lrjax_onednn_threads_fixed():
      # Its weight gradient's bits would then depend on the CPUs each process gets.
      return Unavailable(
        f"oneDNN {'.'.join(map(str, version))} runs on {threading} threads, whose count lrjax "
        f"cannot fix, so results would depend on the process; {INSTALL}"
      )
    for target, symbol in TARGETS.items():
      jax.ffi.register_ffi_target(
        target, jax.ffi.pycapsule(getattr(handle, symbol)), platform="cpu"
      )
    if not handle.lrjax_onednn_supports(0):
      return Unavailable("oneDNN has no float32 convolution for this CPU")
    bf16 = bool(handle.lrjax_onednn_supports(1))
  except (OSError, AttributeError) as e:
    return Unavailable(f"loading {path} failed: {e}")
  return Library(path, ".".join(map(str, version)), bf16, threading)
