"""One run of a study through the user's training function (`lrjax.function.job` states the
contract): the function called with its `TrainJob`, its return checked, and the run recorded as
the engine's runs are (`config.json`, `metrics.jsonl`, `summary.json`), or as failed."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from lrjax.files.atomic import write_json
from lrjax.function.job import FunctionFailed, TrainJob
from lrjax.import_path import import_object
from lrjax.runtime import setup
from lrjax.runtime.preemption import Preempted, StopSignal
from lrjax.schedules.base import Schedule
from lrjax.train import records
from lrjax.train.resolve import resolve_schedule

CURVE_KEYS = ("train_loss", "test_loss", "test_accuracy", "validation_loss", "validation_accuracy")
FAILED = "failed.json"


def function_of(path: Any, field: str = "study.train_fn") -> Callable[[TrainJob], Any]:
  """The training function `"package.module:function"` names; ValueError naming `field`."""
  if not isinstance(path, str) or path.count(":") != 1:
    raise ValueError(f"config.{field} must be 'package.module:function', got {path!r}")
  fn = import_object(path, field)
  if not callable(fn):
    raise ValueError(f"config.{field}={path!r} is not a function, got {type(fn).__name__}")
  return fn


def resolved_schedule(cfg: Any, spe: int) -> Schedule:
  return resolve_schedule(cfg.schedule, spe, spe * cfg.num_epochs)


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


def _summary(metrics: dict, job: TrainJob, curves: list[dict], seconds: float, runtime: Any):
  out: dict[str, Any] = {"epochs": job.num_epochs, "seconds": seconds, "metrics": metrics}
  if "diverged" in metrics:
    step = int(metrics["diverged"])
    lr = float(job.schedule(step))
    out |= {
      "final_test_accuracy": None,
      "final_test_loss": None,
      "final_train_loss": None,
      "diverged": {
        "step": step,
        "lr": lr,
        "message": f"the training function reported divergence at step {step} (lr {lr:.6g})",
      },
    }
  else:
    out |= {"steps": job.total_steps, "final_train_loss": metrics.get("train_loss")}
    out |= {f"final_{k}": v for k, v in metrics.items() if k in CURVE_KEYS}
    if curves and all("validation_accuracy" in c for c in curves):
      best = max(curves, key=lambda c: (c["validation_accuracy"], -c["epoch"]))
      out |= {"best_epoch": best["epoch"], "best_validation_accuracy": best["validation_accuracy"]}
      out["test_accuracy_at_best_epoch"] = best.get("test_accuracy")
  out["schedule"] = job.schedule.to_config()
  out["runtime"] = runtime
  out["environment"] = records.environment()
  return out


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


def run(config: Any, cfg: Any, arm: str, overrides: Mapping, lr_scale: float, folder: str) -> dict:
  """Calls the study's function for one run (config `cfg`) in `folder`; writes its files and
  returns its summary.

  Raises:
    FunctionFailed: the function failed (see the module docstring); `failed.json` says why.
    Preempted: the function stopped on a signal (`TrainJob.stop`).
  """
  path = config.study.train_fn
  spe = int(config.study.steps_per_epoch)  # checked by `lrjax.compare.study.parse`
  budget = f" budget {cfg.num_epochs}" if config.study.get("budgets") else ""
  label = f"{arm} seed {cfg.seed}{budget}"
  tune = config.study.get("tune", None)
  required = ("test_accuracy", "test_loss")
  if tune is not None:
    required += (tune.get("metric", "validation_accuracy"),)
  runtime = setup(config.get("runtime")).record()  # this process's, set up by the worker
  os.makedirs(folder, exist_ok=True)
  write_json(os.path.join(folder, "config.json"), _resolved(cfg, spe, runtime))
  t0 = time.perf_counter()
  with StopSignal() as signal_flag:
    job = TrainJob(
      arm,
      dict(overrides),
      cfg,
      int(cfg.seed),
      config.study.get("budgets") and cfg.num_epochs,
      int(cfg.num_epochs),
      spe,
      spe * int(cfg.num_epochs),
      resolved_schedule(cfg, spe),
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
      _fail(folder, label, e.what)
    except Exception as e:  # the user's code may fail in any way: one line, this run only
      text = str(e).strip().splitlines()
      what = f"{path} raised {type(e).__name__}" + (f": {text[-1]}" if text else "")
      _fail(folder, label, what)
  summary = _summary(metrics, job, curves, time.perf_counter() - t0, runtime)
  records.write_records(folder, _records(curves, job))
  if os.path.exists(os.path.join(folder, FAILED)):
    os.remove(os.path.join(folder, FAILED))
  write_json(os.path.join(folder, "summary.json"), summary)
  return summary


def _fail(folder: str, run: str, what: str):
  error = FunctionFailed(what, run)
  write_json(os.path.join(folder, FAILED), {"reason": str(error)})
  raise error


def _resolved(cfg: Any, spe: int, runtime: Any) -> dict:
  """What `config.json` records, as the engine's runs record it."""
  return {
    "config": cfg.to_dict(),
    "runtime": runtime,
    "schedule": resolved_schedule(cfg, spe).to_config(),
    "steps_per_epoch": spe,
    "total_steps": spe * int(cfg.num_epochs),
  }
