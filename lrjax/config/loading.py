"""Loading a config by name or file, with overrides, and checking its field names.

A config is a module with `get_config()` (some take a variant: `chapter:linear`); variants import
`default` and change a few fields. `load` accepts

* `NAME[:VARIANT]`: a built-in config, `configs/NAME.py` (installed as `lrjax.configs`:
  `fashion_mnist`, `study_smoke`, ...);
* `PATH.py[:VARIANT]`: a config file of yours; it may `from lrjax.configs import default`.

A config has the fields of `lrjax.configs.default` (and `study` for a study), nothing else: a
field it sets that lrjax does not know (a typo such as `weight_decy`) is refused as the same typo
on the command line is. Fields of your own (which your model, dataset or training function may
read) go under `config.user`, which lrjax never reads.

Every problem with a config (unknown name, missing file, syntax error, a variant the file does not
take, an unknown field, a value of the wrong type) raises `ConfigError` naming it. What a loaded
config means is checked once by `lrjax.config.experiment.parse` (a training run) or
`lrjax.config.study.parse` (a study), into the typed objects everything else takes.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import inspect
import json
import os
import pkgutil
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lrjax.config import study as _study
from lrjax.config.checks import ConfigError

BUILTIN = "lrjax.configs"  # the package of the built-in configs


def builtin_names() -> list[str]:
  """The names of the built-in configs, sorted: those `load` takes without a path.

  Example:
    >>> from lrjax import config as lrjax_config
    >>> "smoke" in lrjax_config.builtin_names(), "default" in lrjax_config.builtin_names()
    (True, True)
  """
  package = importlib.import_module(BUILTIN)
  # A module without get_config() (arm and schedule definitions) is not a config.
  names = [m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")]
  return sorted(
    n for n in names if hasattr(importlib.import_module(f"{BUILTIN}.{n}"), "get_config")
  )


def _split(spec: str) -> tuple[str, str | None]:
  """(name or path, variant or None) of `NAME[:VARIANT]` or `PATH.py[:VARIANT]`."""
  m = re.fullmatch(r"(.+?\.py)(?::(.*))?", spec) or re.fullmatch(r"([^:]+)(?::(.*))?", spec)
  if not m:
    raise ConfigError(f"config must be NAME[:VARIANT] or FILE.py[:VARIANT], got {spec!r}")
  return m.group(1), m.group(2)


def _module(target: str, spec: str):
  if target.endswith(".py"):
    path = os.path.abspath(target)
    if not os.path.isfile(path):
      raise ConfigError(f"config file {target!r} not found (from --config {spec})")
    # A name of its own per file, so two configs with the same file name do not collide.
    name = "_lrjax_config_" + re.sub(r"\W", "_", path)
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    try:
      module_spec.loader.exec_module(module)
    except SyntaxError as e:
      raise ConfigError(
        f"config file {target!r} has a syntax error at line {e.lineno}: {e.msg}"
      ) from e
    except Exception as e:
      raise ConfigError(f"config file {target!r} failed to load: {type(e).__name__}: {e}") from e
    return module
  if not re.fullmatch(r"[A-Za-z_]\w*", target) or target not in builtin_names():
    raise ConfigError(
      f"config {target!r} is neither a built-in config ({', '.join(builtin_names())}) nor a FILE.py"
    )
  return importlib.import_module(f"{BUILTIN}.{target}")


def load(spec: str, overrides: Sequence[tuple[str, str]] = ()) -> Any:
  """The locked `ml_collections.ConfigDict` of `spec` with `overrides` applied.

  Args:
    spec: `NAME[:VARIANT]` (a built-in config) or `PATH.py[:VARIANT]`.
    overrides: (dotted field, text) pairs, as `--config.FIELD=TEXT` gives them; see `override`.

  Returns:
    The config, locked, so that no field can be added by mistake.

  Raises:
    ConfigError: naming the config, the variant, the field or the value at fault.

  Example:
    >>> from lrjax import config as lrjax_config
    >>> config = lrjax_config.load("smoke", [("num_epochs", "3")])
    >>> config.num_epochs, config.model, config.dataset
    (3, 'tiny', 'synthetic')
  """
  if not isinstance(spec, str) or not spec:
    raise ConfigError(f"spec must be a non-empty string, got {spec!r}")
  target, variant = _split(spec)
  module = _module(target, spec)
  get_config = getattr(module, "get_config", None)
  if not callable(get_config):
    raise ConfigError(f"config {target!r} has no get_config() function")
  takes_variant = bool(inspect.signature(get_config).parameters)
  if variant is not None and not takes_variant:
    raise ConfigError(f"config {target!r} takes no variant, got {variant!r}")
  try:
    config = get_config(variant) if variant is not None else get_config()
  except (ValueError, KeyError) as e:
    raise ConfigError(f"config {spec!r}: {e}") from e
  check_fields(config, spec)
  for field, text in overrides:
    override(config, field, text)
  config.lock()
  return config


# The fields a study config may set under `config.study` (see `lrjax.config.study`).
STUDY_FIELDS = _study.FIELDS
# Fields beside those of `lrjax.configs.default`: the study, the user's own, the schedules of the
# optimizer's hyperparameters, the plateau, the parameter groups, the batch ramp and the tokens
# of an example (none by default; `lrjax.config.experiment`).
EXTRA_FIELDS = (
  "study",
  "user",
  "optimizer_schedules",
  "plateau",
  "param_groups",
  "batch_ramp",
  "tokens_per_sample",
)


def check_fields(config: Any, spec: str = "the config") -> None:
  """Raises ConfigError for a field that lrjax does not know (see the module docstring).

  Args:
    config: a config (an `ml_collections.ConfigDict` or a mapping with `keys`).
    spec: how to name the config in the message.

  Raises:
    ConfigError: for the first unknown field, with the closest known name if there is one.

  Example:
    >>> import ml_collections
    >>> from lrjax import config as lrjax_config
    >>> typo = ml_collections.ConfigDict({"weight_decy": 0.1})
    >>> lrjax_config.check_fields(typo)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lrjax.config.checks.ConfigError: config 'the config' sets config.weight_decy, ...
  """
  default = importlib.import_module(f"{BUILTIN}.default").get_config()
  known = {"": [*default.keys(), *EXTRA_FIELDS]}
  for key in default.keys():
    group = default[key]
    if hasattr(group, "keys") and "name" not in group and key != "user":
      known[key] = list(group.keys())  # a group of fields, such as `runtime`
  known["study"] = list(STUDY_FIELDS)
  for where, fields in known.items():
    node = config if not where else (config.get(where) if hasattr(config, "get") else None)
    if node is None or not hasattr(node, "keys"):
      continue
    for key in node.keys():
      if key not in fields:
        name = f"{where}.{key}" if where else key
        close = difflib.get_close_matches(key, fields, n=1)
        hint = f"did you mean {(where + '.' if where else '') + close[0]!r}? " if close else ""
        raise ConfigError(
          f"config {spec!r} sets config.{name}, which lrjax does not know; {hint}put fields of "
          "your own under config.user"
        )


def _parse(text: str, old: Any, field: str) -> Any:
  """`text` as a value of `old`'s type: the rules of `override`."""
  kind = "a dict" if hasattr(old, "keys") else type(old).__name__
  bad = ConfigError(f"--config.{field} must be {kind}, got {text!r}")
  if isinstance(old, bool):
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.strip().lower() not in words:
      raise bad
    return words[text.strip().lower()]
  if isinstance(old, (int, float)):
    try:
      value = int(text) if isinstance(old, int) else float(text)
    except ValueError:
      raise bad from None
    return value
  if isinstance(old, str):
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    try:
      value = json.loads(text)  # JSON spells true/false/null, which Python literals do not
    except ValueError:
      if old is None:
        return text
      raise bad from None
  if isinstance(old, (tuple, list)):
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    return type(old)(value)
  if hasattr(old, "keys") and not isinstance(value, Mapping):
    raise bad
  return value


def override(config: Any, field: str, text: str) -> None:
  """Sets the dotted `field` of `config` from command-line `text`, typed by its current value.

  bool: true/false (also 1/0, yes/no); int, float: a number; str: the text as is; tuple, list:
  a Python literal (`(0,1,2)` or `0,1,2`); a dict (such as `schedule`): a Python or JSON dict,
  which replaces it whole; None: a Python literal, else the text.

  Args:
    config: the config to change in place (it may be locked: the field exists).
    field: a dotted field name, such as "num_epochs" or "runtime.threads".
    text: the value as the command line gives it.

  Raises:
    ConfigError: if `field` is not a field of `config` or `text` does not fit its type.

  Example:
    >>> from lrjax import config as lrjax_config
    >>> config = lrjax_config.load("smoke")
    >>> lrjax_config.override(config, "schedule", '{"name": "constant", "value": 0.05}')
    >>> lrjax_config.override(config, "runtime.threads", "2")
    >>> config.schedule.to_dict(), config.runtime.threads
    ({'name': 'constant', 'value': 0.05}, 2)
  """
  if not isinstance(field, str) or not field:
    raise ConfigError(f"field must be a dotted config field name, got {field!r}")
  node, parts = config, field.split(".")
  for depth, part in enumerate(parts):
    keys = list(node.keys()) if isinstance(node, Mapping) or hasattr(node, "keys") else []
    if part not in keys:
      where = ".".join(parts[:depth]) or "the config"
      close = difflib.get_close_matches(part, [str(k) for k in keys], n=1)
      hint = f"; did you mean {'.'.join([*parts[:depth], close[0]])!r}?" if close else ""
      raise ConfigError(f"unknown config field {field!r} (no {part!r} in {where}){hint}")
    if depth < len(parts) - 1:
      node = node[part]
  last = parts[-1]
  value = _parse(text, node[last], field)
  try:
    node[last] = value
  except (TypeError, ValueError, AttributeError) as e:
    raise ConfigError(f"--config.{field}={text}: {e}") from e


def fields(config: Any, prefix: str = "") -> list[tuple[str, Any]]:
  """(dotted name, value) of every field of `config` in its order, nested dicts flattened.

  A schedule config (a dict with a "name") stays whole, as it is overridden whole.

  Args:
    config: a config.
    prefix: put before every name (the path of `config` inside a larger one).

  Example:
    >>> from lrjax import config as lrjax_config
    >>> config = lrjax_config.load("smoke")
    >>> [(name, value) for name, value in lrjax_config.fields(config) if "thread" in name]
    [('runtime.threads', 0)]
  """
  out = []
  for key in config.keys():
    value = config[key]
    name = f"{prefix}{key}"
    # A dict with a "name" is one schedule config: shown whole, as it is overridden whole.
    if hasattr(value, "keys") and len(value.keys()) and "name" not in value.keys():
      out += fields(value, f"{name}.")
    else:
      out.append((name, value.to_dict() if hasattr(value, "to_dict") else value))
  return out
