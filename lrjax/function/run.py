"""One run of a study through the user's training function (`lrjax.function.job` states the
contract): the function called with its `TrainJob`, its return checked, and the run recorded as
the engine's runs are (`config.json`, `metrics.jsonl`, `summary.json`), or as failed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from lrjax import runtime as runtime_lib
from lrjax.config.durations import resolve_schedule
from lrjax.config.experiment import Experiment
from lrjax.config.study import Study
from lrjax.files.run_dir import RunDir
from lrjax.function.job import FunctionFailed, TrainJob
from lrjax.import_path import import_object
from lrjax.runtime.preemption import Preempted, StopSignal
from lrjax.schedules.base import Schedule
from lrjax.train import records

CURVE_KEYS = ("train_loss", "test_loss", "test_accuracy", "validation_loss", "validation_accuracy")


def function_of(path: Any, field: str = "study.train_fn") -> Callable[[TrainJob], Any]:
  """The training function `"package.module:function"` names; ValueError naming `field`."""
  if not isinstance(path, str) or path.count(":") != 1:
    raise ValueError(f"config.{field} must be 'package.module:function', got {path!r}")
  fn = import_object(path, field)
  if not callable(fn):
    raise ValueError(f"config.{field}={path!r} is not a function, got {type(fn).__name__}")
  return fn


def resolved_schedule(experiment: Experiment, spe: int) -> Schedule:
  return resolve_schedule(
    experiment.schedule,
    spe,
    spe * experiment.num_epochs,
    samples_per_step=experiment.batch_size,
    tokens_per_sample=experiment.tokens_per_sample,
  )


def _number(value: Any) -> bool:
  return isinstance(value, int | float) and not isinstance(value, bool)


def _checked(out: Any, required: tuple[str, ...], where: str) -> tuple[dict, list[dict]]:
  """The function's return as (final metrics, epoch curves); FunctionFailed in one line."""
  if not isinstance(out, Mapping):
    raise FunctionFailed(f"{where} returned {type(out).__name__}, not a mapping of metrics")
  curves = out.get("curves", [])
  if not isinstance(curves, list | tuple) or not all(isinstance(c, Mapping) for c in curves):
    raise FunctionFailed(f"{where} returned curves that are not a list of mappings per epoch")
  for i, c in enumerate(curves):
    bad = [k for k, v in c.items() if not _number(v)]
    if bad:
      raise FunctionFailed(f"{where} returned curves[{i}][{bad[0]!r}]={c[bad[0]]!r}, not a number")
  metrics = {k: v for k, v in out.items() if k != "curves"}
  if "diverged" in metrics:
    return metrics, list(curves)
  for key in required:
    if key not in metrics:
      raise FunctionFailed(f"{where} returned no {key!r} (it returned {sorted(metrics)})")
  for key, value in metrics.items():
    if not _number(value) or not math.isfinite(value):
      raise FunctionFailed(f"{where} returned {key}={value!r}, not a finite number")
  return metrics, list(curves)


def _summary(metrics: dict, job: TrainJob, rows: list[dict], seconds: float, runtime: Any):
  """The run's summary, built as the engine builds one (`lrjax.train.records.summary`)."""
  extra = {"epochs": job.num_epochs, "seconds": seconds, "metrics": metrics}
  diverged = None
  if "diverged" in metrics:
    step = int(metrics["diverged"])
    lr = float(job.schedule(step))
    message = f"the training function reported divergence at step {step} (lr {lr:.6g})"
    diverged = {"step": step, "lr": lr, "message": message}
  else:
    extra["steps"] = job.total_steps
  final = {k: v for k, v in metrics.items() if k in CURVE_KEYS}
  return records.summary(
    rows, job.schedule.to_config(), runtime, diverged, extra, final={"train_loss": None, **final}
  )


def _records(curves: list[dict], job: TrainJob) -> list[dict]:
  """The curves as epoch records (step and learning rate at each epoch's end added)."""
  out = []
  for i, c in enumerate(curves):
    epoch = c.get("epoch", i + 1)
    step = min(round(epoch * job.steps_per_epoch), job.total_steps)
    nan = float("nan")
    row = {"epoch": epoch, "step": step, "lr": float(job.schedule(max(step - 1, 0)))}
    out.append(row | {k: c.get(k, nan) for k in ("train_accuracy", *CURVE_KEYS)} | dict(c))
  return out


def run(
  study: Study, experiment: Experiment, arm: str, overrides: Mapping, lr_scale: float, folder: str
) -> dict:
  """Calls the study's function for one run (`experiment`) in `folder`; writes its files and
  returns its summary.

  Raises:
    FunctionFailed: the function failed (see the module docstring); `failed.json` says why.
    Preempted: the function stopped on a signal (`TrainJob.stop`).
  """
  path = study.train_fn
  spe = study.steps_per_epoch
  budget = f" budget {experiment.num_epochs}" if study.budgets else ""
  label = f"{arm} seed {experiment.seed}{budget}"
  required = ("test_accuracy", "test_loss")
  if study.tune is not None:
    required += (study.tune.metric,)
  runtime = runtime_lib.for_run(experiment.runtime).record()
  files = RunDir(folder)
  files.write_config(_resolved(experiment, spe, runtime))
  t0 = time.perf_counter()
  with StopSignal() as signal_flag:
    job = TrainJob(
      arm,
      dict(overrides),
      experiment,
      experiment.seed,
      experiment.num_epochs if study.budgets else None,
      experiment.num_epochs,
      spe,
      spe * experiment.num_epochs,
      resolved_schedule(experiment, spe),
      float(lr_scale),
      folder,
      signal_flag,
    )
    try:
      fn = function_of(path)
      out = fn(job)
      metrics, curves = _checked(out, required, path)
    except (Preempted, KeyboardInterrupt):
      raise
    except FunctionFailed as e:
      _fail(files, label, e.what)
    except Exception as e:  # the user's code may fail in any way: one line, this run only
      text = str(e).strip().splitlines()
      what = f"{path} raised {type(e).__name__}" + (f": {text[-1]}" if text else "")
      _fail(files, label, what)
  rows = _records(curves, job)
  summary = _summary(metrics, job, rows, time.perf_counter() - t0, runtime)
  files.write_records(rows)
  files.write_summary(summary)
  return summary


def _fail(files: RunDir, run: str, what: str):
  error = FunctionFailed(what, run)
  files.fail(str(error))
  raise error


def _resolved(experiment: Experiment, spe: int, runtime: Any) -> dict:
  """What `config.json` records, as the engine's runs record it."""
  return {
    "config": experiment.to_dict(),
    "runtime": runtime,
    "schedule": resolved_schedule(experiment, spe).to_config(),
    "steps_per_epoch": spe,
    "total_steps": spe * experiment.num_epochs,
  }
