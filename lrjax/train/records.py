"""A run's summary, built one way for every run (the engine's, and the user's training
function's), with one rule for its best epoch; and what bitwise results depend on.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np


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


def best_epoch(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
  """The epoch chosen on validation data: the highest validation accuracy, the earliest of
  equals; None where an epoch has none (test data chooses nothing), or a value that is not
  finite.

  Example:
    >>> from lrjax.train.records import best_epoch
    >>> best_epoch([{"epoch": 0, "validation_accuracy": 0.8}, {"epoch": 1,
    ...   "validation_accuracy": 0.8}])["epoch"]
    0
  """
  if not records or not all(math.isfinite(r.get("validation_accuracy", math.nan)) for r in records):
    return None
  return max(records, key=lambda r: (r["validation_accuracy"], -r["epoch"]))


def summary(
  records: Sequence[Mapping[str, Any]],
  schedule_config: dict,
  runtime: dict,
  diverged: dict | None = None,
  extra: Mapping[str, Any] | None = None,
  *,
  final: Mapping[str, Any] | None = None,
) -> dict:
  """A run's summary (what `summary.json` holds).

  Args:
    records: its epoch records (`metrics.jsonl`).
    schedule_config: its schedule in steps (`Schedule.to_config()`).
    runtime: the runtime it ran under (`lrjax.runtime.Runtime.record`).
    diverged: where its loss stopped being finite (step, lr, message), or None.
    extra: more fields to keep (`params_sha256`, `population`, a function's `metrics`).
    final: its final metrics where they are not the last record's (a training function returns
      them: `test_accuracy`, `test_loss`, `train_loss`, `validation_*`); default: the last
      record's.

  Its best epoch is `best_epoch`'s, with the test accuracy there reported beside it.
  """
  out: dict[str, Any] = {"epochs": len(records)}
  if diverged:
    # A diverged schedule is a study result: it counts as finished, and the report lists it
    # instead of averaging it in (delete the run's folder to try again).
    out |= {
      "final_test_accuracy": None,
      "final_test_loss": None,
      "final_train_loss": None,
      "diverged": diverged,
    }
  elif records or final:
    last = dict(final) if final is not None else dict(records[-1])
    if records:
      out["steps"] = records[-1]["step"]
    out |= {
      "final_test_accuracy": last.get("test_accuracy"),
      "final_test_loss": last.get("test_loss"),
      "final_train_loss": last.get("train_loss"),
    }
    for key in ("validation_accuracy", "validation_loss"):
      if key in last:
        out[f"final_{key}"] = last[key]
    best = best_epoch(records)
    if best is not None:
      out |= {
        "best_epoch": best["epoch"],
        "best_validation_accuracy": best["validation_accuracy"],
        "test_accuracy_at_best_epoch": best.get("test_accuracy"),
      }
  out |= dict(extra or {})
  out["seconds"] = out.get("seconds", sum(r.get("seconds", 0.0) for r in records))
  out["schedule"] = schedule_config
  out["runtime"] = runtime
  out["environment"] = environment()
  return out


def group_rates(param_groups: Any, lr: float) -> dict[str, float]:
  """Each parameter group's learning rate for an epoch's record, `"lr/{label}"` beside `lr`:
  its factor times `lr` (`config.param_groups`); {} without groups.

  Args:
    param_groups: the run's `lrjax.groups.ParamGroups`, or None.
    lr: the learning rate (the schedule's value).
  """
  if param_groups is None:
    return {}
  return {f"lr/{label}": factor * lr for label, factor in param_groups.factors().items()}
