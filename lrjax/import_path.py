"""A user's own code named in a config as `"package.module:attribute"` (a model, a dataset, a
training function). The module is found on the Python path, else in the current directory (as
`python -m` would find it; the `lrjax` command's own path does not hold it). Workers of the Ray and
Slurm executors import it too: put it on their `PYTHONPATH` or install it.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


def is_import_path(name: Any) -> bool:
  """True for "package.module:attribute" (what selects a user's model or dataset)."""
  return isinstance(name, str) and name.count(":") == 1 and not name.startswith("synthetic")


def _import(module_name: str) -> Any:
  try:
    return importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    top = module_name.split(".")[0]
    if e.name != top or os.getcwd() in sys.path or "" in sys.path:
      raise
    sys.path.append(os.getcwd())  # last: an installed package of the same name wins
    return importlib.import_module(module_name)


def import_object(path: str, field: str) -> Any:
  """The attribute named by "package.module:attribute" (nested attributes with dots)."""
  module_name, _, attribute = path.partition(":")
  if not module_name or not attribute:
    raise ValueError(f"config.{field} must be 'package.module:attribute', got {path!r}")
  try:
    obj = _import(module_name)
  except Exception as e:  # a user's module may fail in any way: say which and why, in one line
    raise ValueError(
      f"config.{field}={path!r}: cannot import module {module_name!r} ({type(e).__name__}: {e})"
    ) from None
  for part in attribute.split("."):
    if not hasattr(obj, part):
      raise ValueError(
        f"config.{field}={path!r}: module {module_name!r} has no attribute {attribute!r}"
      )
    obj = getattr(obj, part)
  return obj
