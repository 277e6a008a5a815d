"""The command line: `lrjax train | compare | find-lr | plot` (also `python -m lrjax ...`).

  lrjax train --config fashion_mnist --workdir runs/fmnist --config.num_epochs=3
  lrjax compare --config study_fashion_mnist:medium --workdir runs/study
  lrjax find-lr --config my_experiment.py --workdir runs/lr_range
  lrjax plot --all --steps 120 --out schedules.png

`--config NAME[:VARIANT]` is a built-in config (`configs/NAME.py`, the `lrjax.configs`
package), `--config FILE.py[:VARIANT]` a file of yours; `--config.FIELD=VALUE` overrides a field,
typed by its default (see `lrjax.config.override`). `lrjax <command> --help` lists the flags
and the config's fields.

Exit status:
  0  success.
  1  the command ran and failed: a dataset or model the training cannot load, a loss that
     became NaN, a file that cannot be written, a missing optional extra, a workdir that
     another live process is training, a runtime other than the one a resumed run started with.
  2  a usage error, found before anything ran: an unknown command or flag, a flag value of the
     wrong type, a config that is missing, does not parse, or has no such field or variant, a
     field whose value lrjax cannot take (checked once, every field, an arm's overrides too).
  75 preempted: SIGTERM or SIGINT stopped the run after its current step and saved a checkpoint
     there; the same command resumes it.
Errors are one line on stderr starting with `lrjax`; `LRJAX_DEBUG=1` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys

from lrjax.cli.common import EXTRA_OF, Exit, Failure, extra_hint, failure, require, usage_error

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

# Each command's function, imported when it runs ("module:function" in lrjax.cli).
COMMANDS = {
  "train": "train:train",
  "compare": "study:compare",
  "report": "study:report",
  "find-lr": "train:find_lr",
  "plot": "train:plot",
}


def _usage_text() -> str:
  from lrjax import config as config_lib

  return USAGE.format(builtins=", ".join(config_lib.builtin_names()))


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
    require(command)
    module, name = COMMANDS[command].split(":")
    return getattr(importlib.import_module(f"lrjax.cli.{module}"), name)(argv[2:])
  except (Failure, ModuleNotFoundError) as e:
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
