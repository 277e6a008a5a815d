"""`Fields`: a frozen mapping with attribute access, for the free-form parts of a typed config.

A schedule config (`{"name": "cosine_decay", "init_value": 0.1, ...}`), an arm's overrides and
the user's own fields (`config.user`) have no fixed shape, so they cannot be dataclass fields of
their own; `Fields` holds them read-only (nested mappings become `Fields`, lists become tuples),
hashable, and picklable for the executors' worker processes. `to_dict()` gives plain dicts and
lists back, as JSON and `lrjax.from_config` want them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def frozen(value: Any) -> Any:
  """A value with every mapping as `Fields` and every list as a tuple, recursively.

  Args:
    value: a config value (a ConfigDict, mapping, list or scalar).
  """
  if hasattr(value, "to_dict") and not isinstance(value, Fields):  # an ml_collections ConfigDict
    value = value.to_dict()
  if isinstance(value, Mapping):
    return value if isinstance(value, Fields) else Fields(value)
  if isinstance(value, list | tuple):
    return tuple(frozen(v) for v in value)
  return value


def plain(value: Any) -> Any:
  """A value with every `Fields` (or other mapping) as a dict and every tuple as a list.

  Args:
    value: a config value.
  """
  if hasattr(value, "to_dict") and not isinstance(value, Fields):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {k: plain(v) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return [plain(v) for v in value]
  return value


class Fields(Mapping):
  """A read-only mapping whose keys are also attributes (`fields.width`, `fields["width"]`).

  Args:
    items: the fields (a mapping; nested ones are frozen too).

  Example:
    >>> from lrjax.config.values import Fields
    >>> user = Fields({"width": 32, "sizes": [1, 2], "head": {"dropout": 0.1}})
    >>> user.width, user["sizes"], user.head.dropout, user.get("depth", 4)
    (32, (1, 2), 0.1, 4)
    >>> user.to_dict()
    {'width': 32, 'sizes': [1, 2], 'head': {'dropout': 0.1}}
  """

  __slots__ = ("_items",)

  def __init__(self, items: Mapping[str, Any] | None = None):
    items = dict(items or {})
    bad = [k for k in items if not isinstance(k, str)]
    if bad:
      raise ValueError(f"field names must be strings, got {bad[0]!r}")
    object.__setattr__(self, "_items", {k: frozen(v) for k, v in items.items()})

  def __getitem__(self, key: str) -> Any:
    return self._items[key]

  def __iter__(self) -> Iterator[str]:
    return iter(self._items)

  def __len__(self) -> int:
    return len(self._items)

  def __getattr__(self, key: str) -> Any:
    try:
      return self._items[key]
    except KeyError:
      raise AttributeError(f"no field {key!r}; the fields are {sorted(self._items)}") from None

  def __setattr__(self, key: str, value: Any) -> None:
    raise AttributeError(f"fields are read-only: cannot set {key!r}")

  def __hash__(self) -> int:
    return hash(tuple(sorted((k, _hashable(v)) for k, v in self._items.items())))

  def __eq__(self, other: object) -> bool:
    if isinstance(other, Mapping):
      return plain(self) == plain(other)
    return NotImplemented

  def __repr__(self) -> str:
    return f"Fields({self.to_dict()!r})"

  def __reduce__(self):
    return (Fields, (self.to_dict(),))

  def to_dict(self) -> dict[str, Any]:
    """Plain dicts and lists, as JSON holds them."""
    return plain(self)


def _hashable(value: Any) -> Any:
  try:
    hash(value)
  except TypeError:  # a value of an unhashable type the config holds as is (an array, a set)
    return repr(value)
  return value
