"""What every command shares: its parser, its config flags, its one-line errors and exit codes."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from typing import Any

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


class Failure(Exception):
  """A command's one-line failure with its exit status (2: usage, 1: failed, 75: preempted)."""

  def __init__(self, code: int, message: str):
    super().__init__(message)
    self.code, self.message = code, message


def usage_error(message: str) -> Failure:
  return Failure(2, message)


def failure(message: str) -> Failure:
  return Failure(1, message)


def extra_hint(command: str, extra: str) -> str:
  return f"lrjax {command} needs the [{extra}] extra: pip install 'lrjax[{extra}]'"


def require(command: str) -> None:
  extra, modules = NEEDS[command]
  # find_spec is None both for an absent module and for one blocked in sys.modules.
  missing = [m for m in modules if importlib.util.find_spec(m) is None]
  if missing:
    raise failure(f"{extra_hint(command, extra)} (missing {', '.join(missing)})")


class _Parser(argparse.ArgumentParser):
  """argparse with one-line errors through `Failure`, so every error looks alike."""

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
  from lrjax import config as config_lib

  spec = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
  if spec is None and "--config" in args[:-1]:
    spec = args[args.index("--config") + 1]
  try:
    config = config_lib.load(spec or "default")
  except config_lib.ConfigError as e:
    return f"config fields: not shown ({e})"
  comments = _field_comments()
  lines = [f"config fields of {spec or 'default'} (override with --config.FIELD=VALUE):"]
  for name, value in config_lib.fields(config):
    text = f"  {name} = {value!r}"
    if name in comments:
      text = f"{text:<40}  # {comments[name]}"
    lines.append(text)
  lines.append(f"built-in configs: {', '.join(config_lib.builtin_names())}")
  return "\n".join(lines)


def parse_config_command(
  p: argparse.ArgumentParser, args: list[str], typed: Callable[[Any], Any]
) -> tuple[Any, Any]:
  """(parsed flags, the config checked into its typed object by `typed`) of a command that takes
  `--config`: `lrjax.config.experiment.parse` or `lrjax.config.study.parse`. Any problem with
  the config is a usage error, found before anything runs."""
  from lrjax import config as config_lib

  args, overrides = _split_overrides(args)
  if "-h" in args or "--help" in args:
    p.epilog = _config_help(args)
  ns = p.parse_args(args)
  try:
    return ns, typed(config_lib.load(ns.config, overrides))
  except config_lib.ConfigError as e:
    raise usage_error(str(e)) from e


PREEMPTED = 75  # EX_TEMPFAIL: a temporary failure, to be retried (by the same command)


def run_command(fn: Callable[[], Any]) -> Any:
  """Runs the engine, turning the errors it documents into one-line failures (exit 1), and a
  preemption into exit status 75."""
  from lrjax.data import datasets
  from lrjax.files.claim import ClaimedError
  from lrjax.runtime.preemption import Preempted
  from lrjax.train.trainer import NonFiniteLossError

  try:
    return fn()
  except Preempted as e:
    raise Failure(PREEMPTED, f"preempted: {e}") from e
  except (
    ValueError,
    OSError,
    datasets.DatasetNotFoundError,
    NonFiniteLossError,
    ClaimedError,
  ) as e:
    raise failure(str(e)) from e
