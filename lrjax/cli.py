"""The command line: `lrjax train | compare | find-lr | plot`.

lrjax train --config configs/fashion_mnist.py --workdir runs/fmnist --config.num_epochs=3
lrjax compare --config configs/study_fashion_mnist.py --workdir runs/study
lrjax find-lr --config configs/fashion_mnist.py --workdir runs/lr_range
lrjax plot --all --steps 120 --out schedules.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys

USAGE = """usage: lrjax <command> [options]

commands:
  train   train a model from a config file:  lrjax train --config FILE[:VARIANT] --workdir DIR
          [--config.FIELD=VALUE ...] [--coordinator_address HOST:PORT --num_processes N
          --process_id I]
  compare train every schedule of a study for every seed, then write the table and figures:
          lrjax compare --config FILE --workdir DIR [--config.FIELD=VALUE ...]
  find-lr learning-rate range test:  lrjax find-lr --config FILE --workdir DIR
          [--min_lr 1e-5 --max_lr 10 --num_steps 200]
  plot    draw schedules into a PNG:  lrjax plot (--all | --schedule JSON ...) --steps N --out FILE

Run `lrjax <command> --help` for a command's options.
"""


def _load_config_flags(argv: list[str], extra: dict[str, str]):
  """Parses `--config FILE[:VARIANT]` with `--config.FIELD=VALUE` overrides, the Flax way."""
  from absl import flags
  from ml_collections import config_flags

  fv = flags.FlagValues()
  # sys_argv: the overrides are read from this argv, not from the process's own.
  config_flags.DEFINE_config_file(
    "config", None, "Experiment config file.", flag_values=fv, lock_config=True, sys_argv=argv
  )
  for name, help_text in extra.items():
    flags.DEFINE_string(name, None, help_text, flag_values=fv)
  # Config files import their siblings as `configs.<name>`: make the repository root importable.
  for arg in argv:
    path = arg.split("=", 1)[-1].split(":", 1)[0]  # FILE.py[:VARIANT] or --config=FILE.py[:...]
    if arg.startswith("--config=") or path.endswith(".py"):
      root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
      if root not in sys.path:
        sys.path.insert(0, root)
  try:
    fv(argv)
  except flags.Error as e:
    raise SystemExit(f"lrjax: {e}") from None
  if fv.config is None:
    raise SystemExit("lrjax: --config is required (for example --config configs/smoke.py)")
  return fv


def _as_flags(error: Exception) -> str:
  """The library says `data_dir=<folder>`; on the command line that is a config override."""
  return (
    str(error)
    .replace("pass data_dir=", "pass --config.data_dir=")
    .replace(" as data_dir.", " as --config.data_dir.")
  )


def _train(argv: list[str]) -> int:
  fv = _load_config_flags(
    argv,
    {
      "workdir": "Directory for checkpoints, metrics and the resolved config.",
      "coordinator_address": "host:port of process 0, for a multi-process run.",
      "num_processes": "Number of processes of a multi-process run.",
      "process_id": "This process's index in a multi-process run.",
    },
  )
  if not fv.workdir:
    raise SystemExit("lrjax: --workdir is required")
  from lrjax.train import devices

  devices.maybe_initialize_distributed(
    fv.coordinator_address,
    int(fv.num_processes) if fv.num_processes else None,
    int(fv.process_id) if fv.process_id else None,
  )
  from lrjax.train import data, loop

  try:
    summary = loop.train_and_evaluate(fv.config, fv.workdir)
  except (ValueError, data.DatasetNotFoundError, loop.NonFiniteLossError) as e:
    raise SystemExit(f"lrjax: {_as_flags(e)}") from None
  hidden = ("state", "run", "schedule")
  print(json.dumps({k: v for k, v in summary.items() if k not in hidden}, indent=2))
  return 0


def _plot(argv: list[str]) -> int:
  import lrjax
  from lrjax import plot

  p = argparse.ArgumentParser(prog="lrjax plot", description="Draw schedules into a PNG.")
  p.add_argument(
    "--schedule",
    action="append",
    default=[],
    help='a schedule config as JSON, e.g. \'{"name": "linear_decay", '
    '"init_value": 0.1, "total_steps": 100}\' (repeatable)',
  )
  p.add_argument("--all", action="store_true", help="every registered schedule's example")
  p.add_argument("--steps", type=int, default=120)
  p.add_argument("--out", required=True)
  p.add_argument("--panels", action="store_true", help="one panel per schedule")
  args = p.parse_args(argv[1:])
  named = {}
  for text in args.schedule:
    try:
      s = lrjax.from_config(json.loads(text))
    except (json.JSONDecodeError, ValueError) as e:
      raise SystemExit(f"lrjax plot: bad --schedule {text!r}: {e}") from None
    named[f"{s.config_name} {len(named) + 1}"] = s
  if args.all:
    for name, entry in sorted(lrjax.registry().items()):
      named[name] = entry.factory(**entry.example)
  if not named:
    raise SystemExit("lrjax plot: give --schedule JSON or --all")
  try:
    path = plot.plot_schedules(named, args.steps, args.out, panels=args.panels or args.all)
  except ValueError as e:
    raise SystemExit(f"lrjax plot: {e}") from None
  print(path)
  return 0


def _compare(argv: list[str]) -> int:
  fv = _load_config_flags(argv, {"workdir": "Directory of the study's runs and results."})
  if not fv.workdir:
    raise SystemExit("lrjax: --workdir is required")
  from lrjax.compare import runner
  from lrjax.train import data, loop

  try:
    runner.compare(fv.config, fv.workdir)
  except (ValueError, data.DatasetNotFoundError, loop.NonFiniteLossError) as e:
    raise SystemExit(f"lrjax: {_as_flags(e)}") from None
  with open(os.path.join(fv.workdir, "results.md")) as f:
    print(f.read())
  return 0


def _find_lr(argv: list[str]) -> int:
  fv = _load_config_flags(
    argv,
    {
      "workdir": "Directory for lr_finder.json and lr_finder.png.",
      "min_lr": "Smallest learning rate of the sweep (default 1e-5).",
      "max_lr": "Largest learning rate of the sweep (default 10).",
      "num_steps": "Steps of the sweep (default 200).",
    },
  )
  if not fv.workdir:
    raise SystemExit("lrjax: --workdir is required")
  from lrjax.compare import lr_finder
  from lrjax.train import data

  try:
    result = lr_finder.find_lr(
      fv.config,
      fv.workdir,
      min_lr=float(fv.min_lr or 1e-5),
      max_lr=float(fv.max_lr or 10.0),
      num_steps=int(fv.num_steps or 200),
    )
  except (ValueError, data.DatasetNotFoundError) as e:
    raise SystemExit(f"lrjax: {e}") from None
  keys = ("suggested_lr", "steepest_lr", "min_loss_lr", "steps_run", "figure")
  print(json.dumps({k: result[k] for k in keys}, indent=2))
  return 0


COMMANDS = {"train": _train, "compare": _compare, "find-lr": _find_lr, "plot": _plot}


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(USAGE)
    return 0
  command = argv[1]
  # Before any JAX computation: XLA reads its flags once, when the backends start.
  from lrjax.train import xla_cpu

  xla_cpu.tune()
  if command not in COMMANDS:
    print(f"lrjax: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2
  return COMMANDS[command]([f"lrjax {command}", *argv[2:]])


if __name__ == "__main__":
  sys.exit(main())
