"""`lrjax train`, `lrjax find-lr` and `lrjax plot`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lrjax.cli.common import (
  add_config_flags,
  failure,
  parse_config_command,
  parser,
  run_command,
  usage_error,
)


def train(args: list[str]) -> int:
  p = parser("train", "Train a model from a config; the workdir gets metrics and checkpoints.")
  add_config_flags(p, "directory for checkpoints, metrics and the resolved config")
  p.add_argument(
    "--coordinator_address",
    metavar="HOST:PORT",
    help="host:port of process 0, for a multi-process run",
  )
  p.add_argument(
    "--num_processes", type=int, metavar="N", help="number of processes of a multi-process run"
  )
  p.add_argument(
    "--process_id", type=int, metavar="I", help="this process's index in a multi-process run"
  )
  from lrjax.config import experiment

  ns, exp = parse_config_command(p, args, experiment.parse)
  from lrjax import runtime
  from lrjax.runtime import devices
  from lrjax.train import api

  def run():
    # Before the runtime starts JAX's backends: a multi-process run is joined first.
    devices.maybe_initialize_distributed(ns.coordinator_address, ns.num_processes, ns.process_id)
    # The process, set up once, under the runtime a resumed run started with.
    runtime.setup(api.run_spec(exp, ns.workdir))
    return api.train_and_evaluate(exp, ns.workdir)

  summary = run_command(run)
  hidden = ("state", "run", "schedule")
  print(json.dumps({k: v for k, v in summary.items() if k not in hidden}, indent=2))
  return 0


def _positive(kind: type) -> Callable[[str], Any]:
  def parse(text: str) -> Any:
    value = kind(text)
    if not value > 0:
      raise ValueError(text)
    return value

  parse.__name__ = f"positive {kind.__name__}"
  return parse


def find_lr(args: list[str]) -> int:
  p = parser("find-lr", "Learning-rate range test: lr grows exponentially until loss diverges.")
  add_config_flags(p, "directory for lr_finder.json and lr_finder.png")
  p.add_argument("--min_lr", type=_positive(float), default=1e-5, help="default %(default)g")
  p.add_argument("--max_lr", type=_positive(float), default=10.0, help="default %(default)g")
  p.add_argument("--num_steps", type=_positive(int), default=200, help="default %(default)d")
  from lrjax.config import experiment

  ns, exp = parse_config_command(p, args, experiment.parse)
  from lrjax import runtime
  from lrjax.lr_finder import find_lr as range_test

  def run():
    runtime.setup(exp.runtime)
    return range_test(exp, ns.workdir, min_lr=ns.min_lr, max_lr=ns.max_lr, num_steps=ns.num_steps)

  result = run_command(run)
  keys = ("suggested_lr", "steepest_lr", "min_loss_lr", "steps_run", "figure")
  print(json.dumps({k: result[k] for k in keys}, indent=2))
  return 0


def plot(args: list[str]) -> int:
  from lrjax.plot import plot_schedules
  from lrjax.schedules.config import from_config, registry

  p = parser("plot", "Draw schedules into a PNG.")
  p.add_argument(
    "--schedule",
    action="append",
    default=[],
    help='a schedule config as JSON, e.g. \'{"name": "linear_decay", '
    '"init_value": 0.1, "total_steps": 100}\' (repeatable)',
  )
  p.add_argument("--all", action="store_true", help="every registered schedule's example")
  p.add_argument("--steps", type=_positive(int), default=120, help="steps drawn (default 120)")
  p.add_argument("--out", required=True, help="the PNG file to write")
  p.add_argument("--panels", action="store_true", help="one panel per schedule")
  ns = p.parse_args(args)
  named = {}
  for text in ns.schedule:
    try:
      s = from_config(json.loads(text))
    except (json.JSONDecodeError, ValueError, TypeError) as e:
      raise usage_error(f"plot: bad --schedule {text!r}: {e}") from e
    named[f"{s.config_name} {len(named) + 1}"] = s
  if ns.all:
    for name, entry in sorted(registry().items()):
      named[name] = entry.factory(**entry.example)
  if not named:
    raise usage_error("plot: give --schedule JSON or --all (see `lrjax plot --help`)")
  try:
    path = plot_schedules(named, ns.steps, ns.out, panels=ns.panels or ns.all)
  except (ValueError, OSError) as e:
    raise failure(f"plot: {e}") from e
  print(path)
  return 0
