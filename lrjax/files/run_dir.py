"""`RunDir`: the one owner of a run's folder, whoever trains the run (the engine, the user's
training function) and whoever reads it (a study, its report, a resume).

A run's folder holds

* `config.json`: what the run was asked to train, resolved (its config, schedule in steps,
  runtime, sizes), written when it starts;
* `metrics.jsonl`: one record per finished epoch, rewritten whole (never a torn line);
* `summary.json`: written last, once the run has finished (or diverged, which is a result too);
* `failed.json`: the one-line reason a user's training function failed on it;
* `skipped.json`: a tuning run its study did not need (an extension past an edge that the grid's
  results did not call for);
* `checkpoints/`, `claim.json`, `tb/`, `snapshots/`: the engine's own (`lrjax.train`,
  `lrjax.files.claim`).

Every file is written atomically (`lrjax.files.atomic`). Nothing else in lrjax names these files.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from typing import Any

from lrjax.files.atomic import read_json, write_atomic, write_json

SUMMARY = "summary.json"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
FAILED = "failed.json"
SKIPPED = "skipped.json"
CHECKPOINTS = "checkpoints"


class State(enum.Enum):
  """Where a run stands, as its folder says."""

  NEW = "new"  # nothing trained yet (no folder, or no checkpoint)
  STARTED = "started"  # a checkpoint, no summary: resumable
  FINISHED = "finished"  # its summary is written (it trained to the end)
  DIVERGED = "diverged"  # its summary says where its loss stopped being finite
  FAILED = "failed"  # the user's training function failed on it (`failed.json`)
  SKIPPED = "skipped"  # a tuning run its study did not need


@dataclasses.dataclass(frozen=True)
class RunDir:
  """A run's folder (see the module docstring).

  Example:
    >>> import tempfile
    >>> from lrjax.files.run_dir import RunDir, State
    >>> run = RunDir(tempfile.mkdtemp())
    >>> run.state(), run.done()
    (<State.NEW: 'new'>, False)
    >>> run.write_summary({"final_test_accuracy": 0.9})
    >>> run.state(), run.done(), run.summary()["final_test_accuracy"]
    (<State.FINISHED: 'finished'>, True, 0.9)
  """

  path: str

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  @property
  def checkpoints(self) -> str:
    """The folder of the run's checkpoints."""
    return self.file(CHECKPOINTS)

  def make(self) -> RunDir:
    os.makedirs(self.path, exist_ok=True)
    return self

  # --------------------------------------------------------------------- where it stands

  def state(self) -> State:
    if os.path.exists(self.file(SUMMARY)):
      return State.DIVERGED if self.summary().get("diverged") else State.FINISHED
    if os.path.exists(self.file(SKIPPED)):
      return State.SKIPPED
    if os.path.exists(self.file(FAILED)):
      return State.FAILED
    return State.STARTED if self.has_checkpoints() else State.NEW

  def finished(self) -> bool:
    """Whether its summary is written: trained to the end, or diverged (a result too)."""
    return os.path.exists(self.file(SUMMARY))

  def done(self) -> bool:
    """Whether nothing is left to train: finished, or skipped by its study."""
    return self.finished() or os.path.exists(self.file(SKIPPED))

  def has_checkpoints(self) -> bool:
    return os.path.isdir(self.checkpoints)

  # --------------------------------------------------------------------- the summary

  def summary(self) -> dict[str, Any] | None:
    """The run's summary, or None before it has finished."""
    path = self.file(SUMMARY)
    return read_json(path) if os.path.exists(path) else None

  def write_summary(self, summary: dict[str, Any]) -> None:
    """Marks the run finished (see `finished`); a failure recorded earlier is cleared."""
    self.make()
    if os.path.exists(self.file(FAILED)):
      os.remove(self.file(FAILED))
    write_json(self.file(SUMMARY), summary)

  # --------------------------------------------------------------------- config and records

  def config(self) -> dict[str, Any] | None:
    """What the run was asked to train (`config.json`), or None before it started."""
    path = self.file(CONFIG)
    return read_json(path) if os.path.exists(path) else None

  def write_config(self, resolved: dict[str, Any]) -> None:
    self.make()
    write_json(self.file(CONFIG), resolved)

  def recorded_runtime(self) -> dict[str, Any] | None:
    """The runtime the run started with (`lrjax.runtime.Runtime.record`), or None (a new run, or
    one written before runs recorded their runtime)."""
    config = self.config()
    return (config or {}).get("runtime") or None

  def records(self, before_epoch: float = math.inf) -> list[dict]:
    """Its epoch records before `before_epoch`."""
    path = self.file(METRICS)
    if not os.path.exists(path):
      return []
    with open(path) as f:
      records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if r["epoch"] < before_epoch]

  def write_records(self, records: list[dict]) -> None:
    """Rewrites `metrics.jsonl` whole (a few hundred lines at most): never a torn record."""
    self.make()
    write_atomic(self.file(METRICS), "".join(json.dumps(r) + "\n" for r in records))

  # --------------------------------------------------------------------- failed and skipped

  def fail(self, reason: str) -> None:
    """Records why the user's training function failed on this run (one line)."""
    write_json(self.make().file(FAILED), {"reason": reason})

  def failure(self) -> str | None:
    path = self.file(FAILED)
    return read_json(path)["reason"] if os.path.exists(path) else None

  def skip(self, why: str) -> None:
    """Marks a tuning run its study does not need (it counts as done, with no summary)."""
    write_json(self.make().file(SKIPPED), {"skipped": why})


def failures(root: str) -> list[str]:
  """The one-line reasons of every failed run under `root`, sorted."""
  out = []
  for parent, _, files in os.walk(root):
    if FAILED in files:
      out.append(read_json(os.path.join(parent, FAILED))["reason"])
  return sorted(out)
