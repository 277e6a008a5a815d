"""The command line: `lrjax train | compare | find-lr | plot` (also `python -m lrjax ...`).

  lrjax train --config fashion_mnist --workdir runs/fmnist --config.num_epochs=3
  lrjax compare --config study_fashion_mnist:medium --workdir runs/study
  lrjax find-lr --config my_experiment.py --workdir runs/lr_range
  lrjax plot --all --steps 120 --out schedules.png

`--config NAME[:VARIANT]` is a built-in config (`lrjax/configs/NAME.py`), `--config
FILE.py[:VARIANT]` a file of yours; `--config.FIELD=VALUE` overrides a field, typed by its default
(see `lrjax.configs.override`). `lrjax <command> --help` lists the flags and the config's fields.

Exit status:
  0  success.
  1  the command ran and failed: a config value or dataset the training rejects, a loss that
     became NaN, a file that cannot be written, a missing optional extra, a workdir that
     another live process is training.
  2  a usage error, found before anything ran: an unknown command or flag, a flag value of the
     wrong type, a config that is missing, does not parse, or has no such field or variant, an
     override value of the wrong type.
  75 preempted: SIGTERM or SIGINT stopped the run after its current step and saved a checkpoint
     there; the same command resumes it.
Errors are one line on stderr starting with `lrjax`; `LRJAX_DEBUG=1` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from typing import Any

USAGE = """usage: lrjax <command> [options]

commands:
  train    train a model:  lrjax train --config NAME|FILE.py[:VARIANT] --workdir DIR
           [--config.FIELD=VALUE ...]
  compare  train every schedule of a study for every seed, then write the table and figures:
           lrjax compare --config NAME|FILE.py[:VARIANT] --workdir DIR [--config.FIELD=VALUE ...]
  report   collect a study's finished runs into results and figures:  lrjax report --workdir DIR
  find-lr  learning-rate range test:  lrjax find-lr --config NAME|FILE.py --workdir DIR
  plot     draw schedules into a PNG:  lrjax plot (--all | --schedule JSON ...) --out FILE

Run `lrjax <command> --help` for a command's flags and config fields.
Built-in configs: {builtins}.
Exit status: 0 success, 1 the command failed, 2 usage error, 75 preempted (rerun to resume).
"""

# What each command imports beyond the core install, and the extra that provides it.
NEEDS = {
  "train": ("train", ("flax", "ml_collections", "orbax", "tensorboardX", "scipy", "matplotlib")),
  "compare": ("train", ("flax", "ml_collections", "orbax", "tensorboardX", "scipy", "matplotlib")),
  "report": ("train", ("flax", "ml_collections", "orbax", "scipy", "matplotlib")),
  "find-lr": ("train", ("flax", "ml_collections", "orbax", "matplotlib")),
  "plot": ("plot", ("matplotlib",)),
}
# The extra of a module a run may import on its way (a dataset through tensorflow-datasets).
EXTRA_OF = {
  "flax": "train",
  "ml_collections": "train",
  "orbax": "train",
  "tensorboardX": "train",
  "scipy": "train",
  "absl": "train",
  "matplotlib": "plot",
  "tensorflow_datasets": "tfds",
  "importlib_resources": "tfds",
  "ray": "ray",
  "submitit": "slurm",
}


class Exit(SystemExit):
  """Ends a command with exit status `code` once `message` is on stderr; str() is the message."""

  def __init__(self, code: int, message: str):
    super().__init__(code)
    self.message = message

  def __str__(self) -> str:
    return self.message


class _Failure(Exception):
  def __init__(self, code: int, message: str):
    super().__init__(message)
    self.code, self.message = code, message


def usage_error(message: str) -> _Failure:
  return _Failure(2, message)


def failure(message: str) -> _Failure:
  return _Failure(1, message)


def extra_hint(command: str, extra: str) -> str:
  return f"lrjax {command} needs the [{extra}] extra: pip install 'lrjax[{extra}]'"


def _require(command: str) -> None:
  extra, modules = NEEDS[command]
  # find_spec is None both for an absent module and for one blocked in sys.modules.
  missing = [m for m in modules if importlib.util.find_spec(m) is None]
  if missing:
    raise failure(f"{extra_hint(command, extra)} (missing {', '.join(missing)})")


class _Parser(argparse.ArgumentParser):
  """argparse with one-line errors through `_Failure`, so every error looks alike."""

  def error(self, message: str):
    raise usage_error(f"{self.prog.removeprefix('lrjax ')}: {message} (see `{self.prog} --help`)")


def parser(command: str, description: str) -> _Parser:
  return _Parser(
    prog=f"lrjax {command}",
    description=description,
    formatter_class=argparse.RawDescriptionHelpFormatter,
    allow_abbrev=False,  # `--conf` must not silently mean `--config`
  )


def add_config_flags(p: argparse.ArgumentParser, workdir_help: str) -> None:
  p.add_argument(
    "--config",
    required=True,
    metavar="NAME|FILE.py[:VARIANT]",
    help="a built-in config by name (e.g. fashion_mnist, study_smoke, chapter:linear) or a "
    "config file, with an optional variant passed to its get_config()",
  )
  p.add_argument("--workdir", required=True, metavar="DIR", help=workdir_help)


def _split_overrides(args: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
  """(other arguments, [(field, text)]) of `--config.FIELD=VALUE` or `--config.FIELD VALUE`."""
  rest, overrides, i = [], [], 0
  while i < len(args):
    arg = args[i]
    if arg.startswith("--config."):
      field, eq, text = arg[len("--config.") :].partition("=")
      if not eq:
        if i + 1 >= len(args) or args[i + 1].startswith("--"):
          raise usage_error(f"--config.{field} needs a value: --config.{field}=VALUE")
        text, i = args[i + 1], i + 1
      overrides.append((field, text))
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


def _field_comments() -> dict[str, str]:
  """The `# why` comment of each field of the default config, for --help."""
  import inspect
  import re

  from lrjax.configs import default

  out = {}
  for line in inspect.getsource(default).splitlines():
    m = re.match(r"\s*config\.(\w+) = .*?  # (.*)$", line)
    if m:
      out[m.group(1)] = m.group(2)
  return out


def _config_help(args: list[str]) -> str:
  """The fields of the config named in `args` (default config without one), for --help."""
  from lrjax import configs

  spec = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
  if spec is None and "--config" in args[:-1]:
    spec = args[args.index("--config") + 1]
  try:
    config = configs.load(spec or "default")
  except configs.ConfigError as e:
    return f"config fields: not shown ({e})"
  comments = _field_comments()
  lines = [f"config fields of {spec or 'default'} (override with --config.FIELD=VALUE):"]
  for name, value in configs.fields(config):
    text = f"  {name} = {value!r}"
    if name in comments:
      text = f"{text:<40}  # {comments[name]}"
    lines.append(text)
  lines.append(f"built-in configs: {', '.join(configs.builtin_names())}")
  return "\n".join(lines)


def parse_config_command(p: argparse.ArgumentParser, args: list[str]) -> tuple[Any, Any]:
  """(parsed flags, loaded config) of a command that takes `--config`."""
  from lrjax import configs

  args, overrides = _split_overrides(args)
  if "-h" in args or "--help" in args:
    p.epilog = _config_help(args)
  ns = p.parse_args(args)
  try:
    config = configs.load(ns.config, overrides)
  except configs.ConfigError as e:
    raise usage_error(str(e)) from e
  return ns, config


def _as_flags(error: Exception) -> str:
  """The library says `data_dir=<folder>`; on the command line that is a config override."""
  return (
    str(error)
    .replace("pass data_dir=", "pass --config.data_dir=")
    .replace(" as data_dir.", " as --config.data_dir.")
  )


PREEMPTED = 75  # EX_TEMPFAIL: a temporary failure, to be retried (by the same command)


def run_command(fn: Callable[[], Any]) -> Any:
  """Runs the engine, turning the errors it documents into one-line failures (exit 1), and a
  preemption into exit status 75."""
  from lrjax.data import datasets
  from lrjax.train import claim, loop

  try:
    # Before any JAX computation: XLA reads its flags once, when the backends start.
    from lrjax.train import xla_cpu

    xla_cpu.tune()
    return fn()
  except loop.Preempted as e:
    raise _Failure(PREEMPTED, f"preempted: {e}") from e
  except (
    ValueError,
    OSError,
    datasets.DatasetNotFoundError,
    loop.NonFiniteLossError,
    claim.ClaimedError,
  ) as e:
    raise failure(_as_flags(e)) from e


def _train(args: list[str]) -> int:
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
  ns, config = parse_config_command(p, args)
  from lrjax.train import devices, loop

  def run():
    devices.maybe_initialize_distributed(ns.coordinator_address, ns.num_processes, ns.process_id)
    return loop.train_and_evaluate(config, ns.workdir)

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


def _find_lr(args: list[str]) -> int:
  p = parser("find-lr", "Learning-rate range test: lr grows exponentially until loss diverges.")
  add_config_flags(p, "directory for lr_finder.json and lr_finder.png")
  p.add_argument("--min_lr", type=_positive(float), default=1e-5, help="default %(default)g")
  p.add_argument("--max_lr", type=_positive(float), default=10.0, help="default %(default)g")
  p.add_argument("--num_steps", type=_positive(int), default=200, help="default %(default)d")
  ns, config = parse_config_command(p, args)
  from lrjax.train import lr_finder

  result = run_command(
    lambda: lr_finder.find_lr(
      config, ns.workdir, min_lr=ns.min_lr, max_lr=ns.max_lr, num_steps=ns.num_steps
    )
  )
  keys = ("suggested_lr", "steepest_lr", "min_loss_lr", "steps_run", "figure")
  print(json.dumps({k: result[k] for k in keys}, indent=2))
  return 0


def _plot(args: list[str]) -> int:
  import lrjax
  from lrjax import plot

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
      s = lrjax.from_config(json.loads(text))
    except (json.JSONDecodeError, ValueError, TypeError) as e:
      raise usage_error(f"plot: bad --schedule {text!r}: {e}") from e
    named[f"{s.config_name} {len(named) + 1}"] = s
  if ns.all:
    for name, entry in sorted(lrjax.registry().items()):
      named[name] = entry.factory(**entry.example)
  if not named:
    raise usage_error("plot: give --schedule JSON or --all (see `lrjax plot --help`)")
  try:
    path = plot.plot_schedules(named, ns.steps, ns.out, panels=ns.panels or ns.all)
  except (ValueError, OSError) as e:
    raise failure(f"plot: {e}") from e
  print(path)
  return 0


def _compare(args: list[str]) -> int:
  from lrjax import cli_study

  return cli_study.compare(args)


def _report(args: list[str]) -> int:
  from lrjax import cli_study

  return cli_study.report(args)


COMMANDS = {
  "train": _train,
  "compare": _compare,
  "report": _report,
  "find-lr": _find_lr,
  "plot": _plot,
}


def _usage_text() -> str:
  from lrjax import configs

  return USAGE.format(builtins=", ".join(configs.builtin_names()))


def main(argv: list[str] | None = None) -> int:
  """Runs `argv` (`["lrjax", command, ...]`; default `sys.argv`) and returns 0 on success.

  Raises:
    SystemExit: status 2 for a usage error, 1 for a failed command (see the module docstring),
      after writing the one-line message to stderr; 0 after `--help`.
  """
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(_usage_text())
    return 0
  command = argv[1]
  try:
    if command not in COMMANDS:
      raise usage_error(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    _require(command)
    return COMMANDS[command](argv[2:])
  except (_Failure, ModuleNotFoundError) as e:
    if os.environ.get("LRJAX_DEBUG", "") not in ("", "0"):
      raise
    if isinstance(e, ModuleNotFoundError):
      top = (e.name or "").split(".")[0]
      if top not in EXTRA_OF:
        raise
      # A module needed on the way (a dataset's reader): name the extra that installs it.
      e = failure(f"{extra_hint(command, EXTRA_OF[top])} (missing {top})")
    message = f"lrjax: {e.message}"
    print(message, file=sys.stderr)
    raise Exit(e.code, message) from None


if __name__ == "__main__":
  sys.exit(main())
