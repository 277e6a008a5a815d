"""A study of your own training function from Python: `function_study(train_fn, workdir, ...)`.

The same study as `config.study.train_fn` in a config file (`lrjax.function` states the
function's contract), run by `lrjax.compare.runner.compare`: the same cells, resume, report files.
Set the process up first, once (`lrjax.runtime.setup({"threads": 1})`: a study's runs compute at
one thread each unless told otherwise), as the command line does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lrjax.compare.runner import compare
from lrjax.executors.base import Executor
from lrjax.import_path import import_path_of


def function_study(
  train_fn: Callable | str,
  workdir: str,
  *,
  schedules: Mapping[str, Mapping[str, Any]] | None = None,
  arms: Mapping[str, Mapping[str, Any]] | None = None,
  seeds: Sequence[int] = (0, 1, 2),
  num_epochs: int = 1,
  steps_per_epoch: int = 1,
  budgets: Sequence[int] = (),
  tune: Mapping[str, Any] | None = None,
  user: Mapping[str, Any] | None = None,
  order: Sequence[str] | None = None,
  executor: Executor | None = None,
  quiet: bool = False,
) -> dict[str, Any]:
  """Runs (or resumes) a study of `train_fn` in `workdir`; returns its results.

  Args:
    train_fn: your training function (`lrjax.function`), or its "package.module:function".
    workdir: the study's folder (its report: `results.md`, `results.json`, figures).
    schedules: arm name -> schedule config (lrjax's config dicts; durations may be in epochs).
    arms: arm name -> config overrides (`schedule`, `user`, ...), beside or instead of `schedules`.
    seeds: the seeds every arm trains with (paired: the same seed, the same start).
    num_epochs: epochs per run (the budget, without `budgets`).
    steps_per_epoch: your function's updates per epoch, to turn epochs into steps.
    budgets: training lengths in epochs, each arm trained at each.
    tune: `config.study.tune` (`lrjax.compare.tuning`): each arm at its best point on validation.
    user: fields of your own, as `job.config.user`.
    order: the arms in column order, the first the baseline (default: sorted names).
    executor: where the runs train (default: this process).
    quiet: no progress lines.

  Raises:
    ValueError: naming the argument at fault.
    CellsFailed: after the report, if some runs failed (their reasons are in it).
  """
  import ml_collections

  from lrjax.configs import default

  if not schedules and not arms:
    raise ValueError("function_study needs schedules or arms (name -> overrides), got neither")
  config = default.get_config()
  config.num_epochs = num_epochs
  config.user = ml_collections.ConfigDict(dict(user or {}))
  study = {
    "train_fn": import_path_of(train_fn),
    "steps_per_epoch": steps_per_epoch,
    "schedules": {n: dict(s) for n, s in (schedules or {}).items()},
    "arms": {n: dict(a) for n, a in (arms or {}).items()},
    "seeds": tuple(seeds),
    "budgets": tuple(budgets),
  }
  if tune is not None:
    study["tune"] = dict(tune)
  if order is not None:
    study["order"] = list(order)
  config.study = ml_collections.ConfigDict(study)
  return compare(config, workdir, executor=executor, quiet=quiet)
