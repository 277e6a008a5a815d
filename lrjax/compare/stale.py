"""A finished run is reused only if it is the run the study now asks for.

A run's folder is named by its arm, seed and budget, not by its config, so a study whose config
changed since its runs trained (an arm's schedule, the tuning grid, and with it an arm's chosen
point) would otherwise report runs of the old config as the new one's. `finished` (what the
study's loop asks of every cell before it trains anything, and again as cells become ready)
compares each finished run's recorded config with the one its cell would train and refuses a
difference in one line naming the run and the field. Fields of how a run is carried out, not
what it computes, may differ.
"""

from __future__ import annotations

import json
import os
from typing import Any

from lrjax.compare import plan
from lrjax.config.study import Study
from lrjax.files.atomic import jsonable
from lrjax.files.run_dir import RunDir

# How a run is carried out, not what it computes (the runtime is checked on its own: a study
# adopts the one it started with; snapshots add predictions to a run, not change it).
FREE = frozenset(
  {
    "snapshot_ensemble",
    "data_dir",
    "eval_batch_size",
    "checkpoint_every_epochs",
    "checkpoint_every_steps",
    "keep_checkpoints",
    "log_every_steps",
    "progress",
    "tensorboard",
    "runtime",
  }
)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
  if isinstance(value, dict):
    out = {}
    for k, v in value.items():
      out |= _flat(v, f"{prefix}{k}.")
    return out or {prefix[:-1]: {}}
  return {prefix[:-1]: value}


def difference(recorded: dict, asked: dict) -> str | None:
  """The first field (dotted) whose value differs between two run configs, or None."""
  a = _flat({k: v for k, v in recorded.items() if k not in FREE})
  b = _flat(json.loads(json.dumps(jsonable({k: v for k, v in asked.items() if k not in FREE}))))
  for key in sorted(set(a) | set(b)):
    if a.get(key, "<absent>") != b.get(key, "<absent>"):
      return key
  return None


def check_cell(study: Study, workdir: str, cell: Any) -> bool:
  """ValueError if a finished run of `cell` was trained with another config than it asks now;
  False where that cannot be told yet (a phase-2 cell whose arm has not chosen)."""
  dirs = [RunDir(d) for d in cell.dirs(workdir)]
  done = [i for i, d in enumerate(dirs) if d.finished()]
  if not done or cell.trunk:
    return True
  if not cell.chosen_yet(study, workdir):  # phase 1 of its arm is not finished: nothing to compare
    return False
  runs = cell.runs(study, workdir)
  for i in done:
    recorded = dirs[i].config()
    if recorded is None:
      continue
    field = difference(recorded.get("config", {}), runs[i].to_dict())
    if field is not None:
      raise ValueError(
        f"{os.path.relpath(dirs[i].path, workdir)} in {workdir} was trained with another "
        f"config.{field} than the study now asks for: use another --workdir, or delete that "
        "run's folder to train it again"
      )
  return True


def finished(study: Study, workdir: str, cell: Any) -> bool:
  """`lrjax.compare.plan.finished`, and its runs are the ones the study asks for. A phase-2
  cell's choice is known only once its arm's phase 1 has finished: until then it counts as not
  finished (it waits for phase 1 anyway), and is checked then."""
  return plan.finished(workdir, cell) and check_cell(study, workdir, cell)
