"""What a config asks of the process it runs in: `config.runtime`, checked.

    config.runtime.convolutions = "auto"   # "onednn", "xla", or "auto": oneDNN where it loads
    config.runtime.threads = 0             # XLA's and oneDNN's thread count; 0: the CPUs here
    config.runtime.xla_cpu_tuning = True   # multi-output fusion, XLA's own convolution kernels
    config.runtime.keep_freed_memory = True  # glibc keeps freed memory for the next step

The first three change the bits of a result (`NUMERICS`); `lrjax.runtime.setup` applies them and
resolves "auto" and 0 into the values it used, which every run records. A resumed run or study
adopts the values it started with for the fields left at "auto" or 0, and refuses (one line) an
explicit value that differs, so it ends bit for bit as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

CONVOLUTIONS = ("auto", "onednn", "xla")
NUMERICS = ("convolutions", "threads", "xla_cpu_tuning")


class RuntimeMismatch(ValueError):
  """A runtime that cannot hold here: asked for one this process (or a run's record) contradicts."""


@dataclasses.dataclass(frozen=True)
class Spec:
  """`config.runtime`: see the module docstring.

  Attributes:
    convolutions: "auto" (oneDNN where it loads), "onednn" or "xla".
    threads: XLA's and oneDNN's thread count (0: the CPUs this process may use).
    xla_cpu_tuning: multi-output fusion and XLA's own convolution kernels.
    keep_freed_memory: glibc's malloc keeps freed memory for the next step.
  """

  convolutions: str = "auto"
  threads: int = 0
  xla_cpu_tuning: bool = True
  keep_freed_memory: bool = True

  def __post_init__(self):
    if self.convolutions not in CONVOLUTIONS:
      _bad("convolutions", self.convolutions, f"one of {list(CONVOLUTIONS)}")
    t = self.threads
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
      _bad("threads", t, "an integer >= 0 (0: the CPUs this process may use)")
    for field in ("xla_cpu_tuning", "keep_freed_memory"):
      if not isinstance(getattr(self, field), bool):
        _bad(field, getattr(self, field), "true or false")

  @classmethod
  def of(cls, value: Any) -> Spec:
    """The spec of `config.runtime`.

    Args:
      value: `config.runtime` (a ConfigDict or mapping; None: the defaults), or a whole config
        that has a `runtime` field.
    """
    if isinstance(value, Spec):
      return value
    if value is not None and not isinstance(value, Mapping) and not hasattr(value, "keys"):
      raise ValueError(f"config.runtime must be a dict of {_fields()}, got {value!r}")
    fields = dict(value.items()) if value is not None else {}
    if "runtime" in fields and "model" in fields:  # a whole config
      fields = dict(fields["runtime"].items()) if fields["runtime"] is not None else {}
    unknown = sorted(set(fields) - set(_fields()))
    if unknown:
      raise ValueError(f"config.runtime has no field {unknown[0]!r}; its fields are {_fields()}")
    return cls(**fields)

  def to_dict(self) -> dict[str, Any]:
    """Its fields, as `config.runtime` holds them."""
    return dataclasses.asdict(self)

  def adopt(self, recorded: Mapping[str, Any] | None, where: str) -> Spec:
    """This spec with the fields it leaves at "auto" or 0 taken from the runtime a run or study
    started with.

    Args:
      recorded: that runtime (`Runtime.record`), or None for a new run or study.
      where: the run or study, for the message.

    Raises:
      RuntimeMismatch: an explicit field of this spec differs from the recorded one.
    """
    if not recorded:
      return self
    out = self.to_dict()
    for field in NUMERICS:
      if field not in recorded:
        continue
      mine, theirs = out[field], recorded[field]
      if mine in ("auto", 0) and field != "xla_cpu_tuning":
        out[field] = theirs
      elif mine != theirs:
        raise RuntimeMismatch(
          f"{where} started with config.runtime.{field}={theirs!r}; this run asks for {mine!r}, "
          f"whose results would differ: resume with --config.runtime.{field}={theirs} (or start "
          "afresh in another folder)"
        )
    return Spec(**out)


def _fields() -> list[str]:
  return [f.name for f in dataclasses.fields(Spec)]


def _bad(field: str, value: Any, want: str) -> None:
  raise ValueError(
    f"config.runtime.{field} must be {want}, got {value!r} (override with "
    f"--config.runtime.{field}=...)"
  )
