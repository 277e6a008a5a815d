"""What the tests that start real `python -m lrjax` processes share: starting and finishing them,
the smoke study's final parameters, its report without wall times, and the one reference study
the executors are compared with (`reference_study`)."""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES, SEEDS = ("constant", "linear", "cosine"), (0, 1)


def start_lrjax(*args, env_extra=None, prefix=()):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env_extra or {})}
  env.pop("XLA_FLAGS", None)
  env.pop("PJRT_NPROC", None)
  return subprocess.Popen(
    [*prefix, sys.executable, "-m", "lrjax", *args],
    cwd=ROOT,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )


def finish(*procs, codes=(0,)):
  outs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode in codes, out
  return outs


def hashes(workdir, seeds=SEEDS):
  return {
    (n, s): json.load(open(os.path.join(workdir, "runs", n, f"seed_{s}", "summary.json")))[
      "params_sha256"
    ]
    for n in NAMES
    for s in seeds
  }


def without_times(md):
  # Times differ from run to run; everything else must not.
  md = re.sub(r"## Training time.*", "", md, flags=re.S)
  return re.sub(r"\d+(\.\d+)?\s*s\b", "<t>", md)


def reference_study(tmp_path_factory) -> pathlib.Path:
  """`lrjax compare --config study_smoke` on a fresh workdir with default settings, in one
  process: trained once per test session (the first test that asks trains it; the others, in
  any xdist worker, wait for it and read it)."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's base is a folder of the session's
    root = root.parent
  workdir = root / "reference_study_smoke"
  with open(root / "reference_study_smoke.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (workdir / "results.md").exists():
      finish(start_lrjax("compare", "--config", "study_smoke", "--workdir", str(workdir)))
  return workdir
