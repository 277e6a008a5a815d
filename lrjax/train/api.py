"""One training run through the engine: `train_and_evaluate(config, workdir)`.

What `lrjax train` calls, and the Python API for one run: the config checked once
(`lrjax.config.experiment`), its runtime resolved against the one a resumed run started with
(`lrjax.runtime.spec`) and this process's (`lrjax.runtime.for_run`; the process is set up once,
by `lrjax.runtime.setup`, where it starts), the run built (`lrjax.train.build`), and one
`Trainer` with the progress line (`lrjax.train.observers`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from lrjax import runtime as runtime_lib
from lrjax.config.experiment import Experiment
from lrjax.files.run_dir import RunDir
from lrjax.runtime.compat import compiled_count
from lrjax.runtime.spec import Spec
from lrjax.train import build
from lrjax.train.observers import ProgressLine
from lrjax.train.trainer import Member, NonFiniteLossError, Trainer


def run_spec(experiment: Experiment, workdir: str) -> Spec:
  """The runtime a run in `workdir` asks for: `experiment.runtime` with the fields it leaves at
  "auto" or 0 taken from the runtime the run started with (a resume), if it has started.

  Raises:
    RuntimeMismatch: an explicit field differs from the one the run started with.
  """
  return experiment.runtime.adopt(RunDir(workdir).recorded_runtime(), workdir)


def train_and_evaluate(config: Any, workdir: str, *, quiet: bool = False) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint, under the runtime it
  started with) and returns the summary, with the final `state`, the `run` and the number of
  new `compilations` of its train step. The process must have been set up
  (`lrjax.runtime.setup(config.runtime)`, once, at its start; the command line does).

  Args:
    config: an `Experiment`, or a training config to check (`lrjax.config.load`, or
      `lrjax.configs.default.get_config()`).
    workdir: the run's folder: `config.json`, `metrics.jsonl`, `summary.json`, checkpoints.
    quiet: no runtime and progress lines on stderr.

  Returns:
    The run's summary as `summary.json` holds it (`final_test_accuracy`, `final_test_loss`, ...,
    `seconds`, the schedule's config and the runtime), with `state` (the final train state),
    `run` (the built run) and `compilations` (new compilations of the train step in this call;
    None where JAX cannot count them).

  Raises:
    ConfigError: a field of `config` lrjax cannot take, naming it.
    NonFiniteLossError: the loss became NaN or infinite (its summary says where).
    Preempted: SIGTERM/SIGINT arrived; a checkpoint at the current step is saved.
    RuntimeMismatch: `config.runtime` asks for other numerics than the run started with, or
      than this process runs.
    RuntimeNotSetUp: `lrjax.runtime.setup` has not been called in this process.
  """
  experiment = Experiment.of(config)
  run = build.build(experiment, runtime_lib.for_run(run_spec(experiment, workdir)))
  if not quiet:
    print(run.runtime.status(), file=sys.stderr, flush=True)
  before = compiled_count(run.train_step)
  os.makedirs(workdir, exist_ok=True)
  observers = [] if quiet else [ProgressLine()]
  result = Trainer([Member(run, workdir)], workdir, observers=observers).fit()
  [summary] = result.summaries
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
  return {**summary, "state": result.train_state, "run": run, "compilations": compilations}
