"""The public API, which the API pages must cover: every public name documented, none left out.

Public (`docs/api/index.md` states the same for readers):

* the names in the `__all__` of `lrjax`, `lrjax.train`, `lrjax.plot` and `lrjax.function`, and
  every registered schedule (`lrjax.registry()`);
* the public names of the modules in `PACKAGES` (the entry points that the README, the configs
  and the examples import from): a module's `__all__`, or without one the functions and classes
  it defines whose names do not start with an underscore;
* of a public class, the methods and properties it defines whose names do not start with an
  underscore.

A public name needs a docstring of its own; a public function or method names each of its
arguments under `Args:`, and a public class that defines its constructor names the constructor's
arguments under `Args:` or `Attributes:`. The first line under `Returns:` has no colon: napoleon
would show the text before it as the return type. Once every page is read, a public name that
breaks these rules, or that no page documents (no Python object of that full name), is a warning:
the `-W` build fails. `tests/test_docs.py` reads the same definition and checks the built pages.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from typing import Any

# Each package and the modules whose public names make up its public API. A package's own module
# counts through its `__all__` (lrjax.compare, lrjax.models and lrjax.data export nothing).
PACKAGES: dict[str, tuple[str, ...]] = {
  "lrjax": (
    "lrjax",
    "lrjax.config",
    "lrjax.config.experiment",
    "lrjax.config.study",
    "lrjax.config.tune",
    "lrjax.config.values",
    "lrjax.runtime",
    "lrjax.stats",
    "lrjax.lr_finder",
  ),
  "lrjax.train": ("lrjax.train",),
  "lrjax.compare": ("lrjax.compare.api", "lrjax.compare.runner"),
  "lrjax.models": ("lrjax.models.registry",),
  "lrjax.data": (
    "lrjax.data.datasets",
    "lrjax.data.errors",
    "lrjax.data.validation",
    "lrjax.data.readers",
    "lrjax.data.user",
    "lrjax.data.preprocess",
  ),
  "lrjax.plot": (
    "lrjax.plot",
    "lrjax.plot.study",
    "lrjax.plot.lr_finder",
    "lrjax.plot.tuning",
    "lrjax.plot.budgets",
  ),
  "lrjax.function": ("lrjax.function",),
}

_SECTION = re.compile(r"(\s*)(Args|Arguments|Attributes):\s*")
_ENTRY = re.compile(r"\*{0,2}(\w+)\s*(\([^)]*\))?\s*:")
_RETURNS = re.compile(r"\s*(Returns|Yields):\s*")
# What napoleon skips when it looks for the colon after a return type: roles and ``literals``.
_NOT_A_COLON = re.compile(r":[\w:+.-]+:`[^`]*`|``.+?``|::")


def module_names(module: Any) -> list[str]:
  """The public names of `module`: its `__all__`, or the functions and classes it defines."""
  if hasattr(module, "__all__"):
    return list(module.__all__)
  return [
    name
    for name, obj in vars(module).items()
    if not name.startswith("_")
    and (inspect.isfunction(obj) or inspect.isclass(obj))
    and obj.__module__ == module.__name__
  ]


def class_members(cls: type) -> dict[str, Any]:
  """The methods and properties `cls` defines itself whose names do not start with `_`."""
  out = {}
  for name, attr in vars(cls).items():
    if isinstance(attr, (staticmethod, classmethod)):
      attr = attr.__func__
    if not name.startswith("_") and (inspect.isfunction(attr) or isinstance(attr, property)):
      out[name] = attr
  return out


def public_names() -> dict[str, dict[str, Any]]:
  """Package -> {full name: object} of every public name, class members included."""
  import lrjax

  out: dict[str, dict[str, Any]] = {}
  for package, modules in PACKAGES.items():
    names = out.setdefault(package, {})
    for module_name in modules:
      module = importlib.import_module(module_name)
      for name in module_names(module):
        obj = getattr(module, name)
        names[f"{module_name}.{name}"] = obj
        if inspect.isclass(obj):
          for member, attr in class_members(obj).items():
            names[f"{module_name}.{name}.{member}"] = attr
  for name, entry in lrjax.registry().items():
    out["lrjax"].setdefault(f"lrjax.{name}", entry.factory)
  return out


def own_docstring(obj: Any) -> str:
  """`obj`'s docstring, "" when it has none of its own (a dataclass's generated one is none)."""
  if isinstance(obj, property):
    obj = obj.fget
  doc = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
  doc = inspect.cleandoc(doc or "")
  if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and doc.startswith(obj.__name__ + "("):
    return ""
  return doc


def documented_arguments(doc: str) -> set[str]:
  """The names listed under the `Args:` and `Attributes:` sections of a Google-style docstring."""
  names: set[str] = set()
  lines = doc.splitlines()
  for i, line in enumerate(lines):
    section = _SECTION.fullmatch(line)
    if section is None:
      continue
    indent, entry = len(section[1]), None
    for body in lines[i + 1 :]:
      if not body.strip():
        continue
      width = len(body) - len(body.lstrip())
      if width <= indent:
        break
      entry = width if entry is None else entry
      match = _ENTRY.match(body.strip())
      if width == entry and match:
        names.add(match[1])
  return names


def typed_returns(doc: str) -> bool:
  """Whether the first line under `Returns:` has a colon, before which napoleon reads the text
  as a return type (`Returns: the config, locked: ...` would show "the config, locked" as one)."""
  lines = doc.splitlines()
  for i, line in enumerate(lines):
    if _RETURNS.fullmatch(line):
      first = next((body for body in lines[i + 1 :] if body.strip()), "")
      return ":" in _NOT_A_COLON.sub("", first)
  return False


def arguments(fn: Any) -> list[str]:
  """The arguments of `fn` a caller passes (not `self` or `cls`, nor names starting with `_`)."""
  try:
    params = inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return []
  return [n for n in params if n not in ("self", "cls") and not n.startswith("_")]


def docstring_problems() -> list[str]:
  """One line per public name that lacks a docstring or leaves an argument undocumented."""
  problems = []
  for names in public_names().values():
    for name, obj in names.items():
      doc = own_docstring(obj)
      if not doc:
        problems.append(f"{name} has no docstring")
        continue
      if inspect.isclass(obj):
        constructor = "__init__" in vars(obj) or "__new__" in vars(obj)
        args = arguments(obj) if constructor else []
      else:
        args = [] if isinstance(obj, property) else arguments(obj)
      missing = [a for a in args if a not in documented_arguments(doc)]
      if missing:
        problems.append(f"{name} does not document {missing} under Args: (or Attributes:)")
      if typed_returns(doc):
        problems.append(f"{name}: the first line under Returns: has a colon (a return type)")
  return problems


def check(app: Any, env: Any) -> None:
  from sphinx.util import logging

  logger = logging.getLogger(__name__)
  for problem in docstring_problems():
    logger.warning("public API: %s", problem)
  documented = set(env.get_domain("py").objects)
  missing = sorted(
    name for names in public_names().values() for name in names if name not in documented
  )
  if missing:
    logger.warning("public names that no page documents (see docs/api/index.md): %s", missing)


def setup(app: Any) -> dict[str, Any]:
  app.connect("env-check-consistency", check)
  return {"parallel_read_safe": True, "parallel_write_safe": True}
