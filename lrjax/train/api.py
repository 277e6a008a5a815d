"""One training run through the engine: `train_and_evaluate(config, workdir)`.

What `lrjax train` calls, and the Python API for one run: the config's runtime (adopting the one
a resumed run started with, `lrjax.runtime.spec`), the run built (`lrjax.train.build`), and one
`Trainer` with the standard hooks (`lrjax.train.hooks.standard`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from typing import Any

from lrjax.files.atomic import read_json
from lrjax.runtime import Spec
from lrjax.runtime.compat import compiled_count
from lrjax.train import build, hooks
from lrjax.train.trainer import Member, NonFiniteLossError, Trainer


def recorded_runtime(workdir: str) -> dict | None:
  """The runtime a run in `workdir` started with (its `config.json`), or None for a new run."""
  path = os.path.join(workdir, "config.json")
  return read_json(path).get("runtime") if os.path.exists(path) else None


def with_runtime(config: Any, runtime: Spec) -> Any:
  """A copy of `config` (a ConfigDict, or a mapping with attribute access) whose
  `config.runtime` is `runtime`'s fields."""
  cfg = copy.deepcopy(config)
  with cfg.unlocked() if hasattr(cfg, "unlocked") else contextlib.nullcontext():
    cfg["runtime"] = runtime.to_dict()
  return cfg


def train_and_evaluate(config: Any, workdir: str, *, quiet: bool = False) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint, under the runtime it
  started with) and returns the summary, with the final `state`, the `run` and the number of
  new `compilations` of its train step.

  Args:
    config: a training config (`lrjax.config.load`, or `lrjax.configs.default.get_config()`).
    workdir: the run's folder: `config.json`, `metrics.jsonl`, `summary.json`, checkpoints.
    quiet: no runtime and progress lines on stderr.

  Returns:
    The run's summary as `summary.json` holds it (`final_test_accuracy`, `final_test_loss`, ...,
    `seconds`, the schedule's config and the runtime), with `state` (the final train state),
    `run` (the built run) and `compilations` (new compilations of the train step in this call;
    None where JAX cannot count them).

  Raises:
    NonFiniteLossError: the loss became NaN or infinite (its summary says where).
    Preempted: SIGTERM/SIGINT arrived; a checkpoint at the current step is saved.
    RuntimeMismatch: `config.runtime` asks for other numerics than the run started with.
  """
  os.makedirs(workdir, exist_ok=True)
  spec = Spec.of(config.get("runtime")).adopt(recorded_runtime(workdir), workdir)
  run = build.build(with_runtime(config, spec))
  if not quiet:
    print(run.runtime.status(), file=sys.stderr, flush=True)
  before = compiled_count(run.train_step)
  member = Member(run, workdir)
  loop = Trainer([member], workdir, hooks=hooks.standard([member], workdir, quiet=quiet)).fit()
  [summary] = loop.summaries
  if summary.get("diverged"):
    d = summary["diverged"]
    raise NonFiniteLossError(
      f"{d['message']}; the run stopped and its last checkpoint is intact. Lower the learning "
      "rate or check the schedule.",
      step=d["step"],
      lr=d["lr"],
    )
  after = compiled_count(run.train_step)
  compilations = None if before is None or after is None else after - before
  return {**summary, "state": loop.train_state, "run": run, "compilations": compilations}
