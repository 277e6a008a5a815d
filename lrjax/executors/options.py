"""`--ray.FIELD=VALUE` and `--slurm.FIELD=VALUE`: the executors' options on the command line."""

from __future__ import annotations

import dataclasses
from typing import Any


def value(text: str) -> Any:
  """Option text as an int, float, bool or, failing those, str."""
  if not isinstance(text, str):
    raise ValueError(f"text must be a str, got {text!r}")
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return {"true": True, "false": False}.get(text.lower(), text)


def split(args: list[str], prefixes: tuple[str, ...]) -> tuple[list[str], dict]:
  """(other arguments, {prefix: {field: text}}) of `--PREFIX.FIELD=VALUE` or `--PREFIX.FIELD V`.

  Raises:
    ValueError: an option without a value or field, or one given twice.
  """
  if not isinstance(args, list | tuple) or not all(isinstance(a, str) for a in args):
    raise ValueError(f"args must be a list of str, got {args!r}")
  rest, out, i = [], {p: {} for p in prefixes}, 0
  while i < len(args):
    arg = args[i]
    prefix = next((p for p in prefixes if arg.startswith(f"--{p}.")), None)
    if prefix is None:
      rest.append(arg)
      i += 1
      continue
    field, eq, text = arg[len(prefix) + 3 :].partition("=")
    if not eq:
      if i + 1 >= len(args) or args[i + 1].startswith("--"):
        raise ValueError(f"--{prefix}.{field} needs a value: --{prefix}.{field}=VALUE")
      text, i = args[i + 1], i + 1
    if not field.isidentifier():
      raise ValueError(f"--{prefix}.FIELD needs a field name, got {arg!r}")
    if field in out[prefix]:
      raise ValueError(f"--{prefix}.{field} is given twice")
    out[prefix][field] = text
    i += 1
  return rest, out


def dataclass_from_flags(cls: type, prefix: str, flags: dict, keep_text: tuple[str, ...] = ()):
  """`cls(**fields)` from `--PREFIX.FIELD=VALUE` texts, each typed by `value` (the fields in
  `keep_text` stay text).

  Raises:
    ValueError: `flags` is not a dict, or names a field `cls` does not have.
  """
  if not isinstance(flags, dict):
    raise ValueError(f"flags must be a dict of field -> text, got {flags!r}")
  fields = [f.name for f in dataclasses.fields(cls)]
  unknown = sorted(set(flags) - set(fields))
  if unknown:
    raise ValueError(f"unknown option --{prefix}.{unknown[0]}; --{prefix}.FIELD is one of {fields}")
  return cls(**{k: v if k in keep_text else value(v) for k, v in flags.items()})
