"""A run's files: `config.json`, `metrics.jsonl`, `summary.json`, each written atomically
(`lrjax.files.atomic`). `summary.json` marks a run as finished.
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

from lrjax.files.atomic import write_atomic


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


_PACKAGES = ("lrjax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint")


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


def summary(
  records: list[dict], schedule_config: dict, runtime: dict, diverged: dict | None = None
) -> dict:
  """A run's summary from its epoch records (and where it diverged, if it did), with the
  runtime it ran under (`lrjax.runtime.Runtime.record`).

  Its best epoch is chosen on validation data (the highest validation accuracy, the earliest of
  equals), with the test accuracy there reported beside it; a run without a validation split
  names no best epoch: test data chooses nothing.
  """
  out: dict[str, Any] = {"epochs": len(records)}
  if records and not diverged:
    last = records[-1]
    out |= {
      "steps": last["step"],
      "final_test_accuracy": last["test_accuracy"],
      "final_test_loss": last["test_loss"],
      "final_train_loss": last["train_loss"],
    }
    if "validation_accuracy" in last:
      best = max(records, key=lambda r: (r["validation_accuracy"], -r["epoch"]))
      out |= {
        "final_validation_accuracy": last["validation_accuracy"],
        "final_validation_loss": last["validation_loss"],
        "best_epoch": best["epoch"],
        "best_validation_accuracy": best["validation_accuracy"],
        "test_accuracy_at_best_epoch": best["test_accuracy"],
      }
  elif diverged:
    # A diverged schedule is a study result: it counts as finished, and the report lists it
    # instead of averaging it in (delete the run's folder to try again).
    out |= {
      "final_test_accuracy": None,
      "final_test_loss": None,
      "final_train_loss": None,
      "diverged": diverged,
    }
  out["seconds"] = sum(r["seconds"] for r in records)
  out["schedule"] = schedule_config
  out["runtime"] = runtime
  out["environment"] = environment()
  return out
