"""A run's files that readers trust: `config.json`, `metrics.jsonl`, `summary.json`.

Every such file is written atomically (a temporary file in the same folder, flushed and synced,
then renamed over the old one), so a crash or a kill leaves either the old file or the new one,
never half of one. `summary.json` marks a run as finished.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
from typing import Any

import jax
import numpy as np


def jsonable(x: Any) -> Any:
  if isinstance(x, dict):
    return {k: jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [jsonable(v) for v in x]
  if isinstance(x, (np.generic, np.ndarray)):
    return x.tolist()
  return x


def write_atomic(path: str, text: str) -> None:
  """Replaces `path` with `text` in one step (POSIX rename)."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def write_json(path: str, value: Any) -> None:
  write_atomic(path, json.dumps(jsonable(value), indent=2))


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def read_records(workdir: str, before_epoch: float = math.inf) -> list[dict]:
  """The epoch records of `workdir`'s `metrics.jsonl` before `before_epoch`."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    records = [json.loads(line) for line in f if line.strip()]
  return [r for r in records if r["epoch"] < before_epoch]


def write_records(workdir: str, records: list[dict]) -> None:
  """Rewrites `metrics.jsonl` whole (a few hundred lines at most): never a torn record."""
  write_atomic(
    os.path.join(workdir, "metrics.jsonl"), "".join(json.dumps(r) + "\n" for r in records)
  )


def digest(params: Any) -> str:
  """A hash of the parameters' bytes: equal hashes mean bitwise-equal runs."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(params)):
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()


_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint")


def environment() -> dict[str, Any]:
  """The versions and device that bitwise results depend on."""
  versions = {}
  for name in _PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  device = jax.devices()[0]
  return {"versions": versions, "device_kind": device.device_kind, "platform": device.platform}


def summary(records: list[dict], schedule_config: dict, diverged: dict | None = None) -> dict:
  """A run's summary from its epoch records (and where it diverged, if it did)."""
  out: dict[str, Any] = {"epochs": len(records)}
  if records and not diverged:
    best = max(records, key=lambda r: r["test_accuracy"])
    last = records[-1]
    out |= {
      "steps": last["step"],
      "final_test_accuracy": last["test_accuracy"],
      "final_test_loss": last["test_loss"],
      "best_test_accuracy": best["test_accuracy"],
      "best_epoch": best["epoch"],
      "final_train_loss": last["train_loss"],
    }
  elif diverged:
    # A diverged schedule is a study result: it counts as finished, and the report lists it
    # instead of averaging it in (delete the run's folder to try again).
    out |= {
      "final_test_accuracy": None,
      "final_test_loss": None,
      "best_test_accuracy": max((r["test_accuracy"] for r in records), default=None),
      "final_train_loss": None,
      "diverged": diverged,
    }
  out["seconds"] = sum(r["seconds"] for r in records)
  out["schedule"] = schedule_config
  out["environment"] = environment()
  return out
