"""A user's own code named in a config as `"package.module:attribute"` (a model, a dataset, a
training function). The module is found on the Python path, else in the current directory (as
`python -m` would find it; the `lrjax` command's own path does not hold it). Workers of the Ray and
Slurm executors import it too: put it on their `PYTHONPATH` or install it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
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


def import_path_of(train_fn: Callable | str) -> str:
  """The "package.module:function" name of `train_fn`, by which every worker imports it again.

  Args:
    train_fn: a function defined at the top level of a module, or its name (returned as is).

  Returns:
    The module's name and the function's qualified name, joined by a colon.

  Raises:
    ValueError: for a `train_fn` that cannot be imported again by that name (a lambda, a
      nested function, a function whose module binds another object to its name).

  Example:
    >>> from lrjax.import_path import import_path_of
    >>> from lrjax.stats import holm
    >>> import_path_of(holm)
    'lrjax.stats.paired:holm'
  """
  if isinstance(train_fn, str):
    return train_fn
  module, name = getattr(train_fn, "__module__", None), getattr(train_fn, "__qualname__", "")
  path = f"{module}:{name}"
  if not callable(train_fn) or not module or "<" in name:
    raise ValueError(
      "train_fn must be a function defined at the top level of a module (or its "
      f"'package.module:function' name), got {train_fn!r}"
    )
  try:
    found = import_object(path, "train_fn")
  except ValueError:
    found = None
  if found is not train_fn:
    raise ValueError(f"train_fn {train_fn!r} cannot be imported again as {path!r}")
  return path
