"""Tuned studies: every arm at its own best point of a grid, chosen on validation data.

`config.study.tune` names what to tune per arm:

* `lr_scale`: factors of the arm's whole learning-rate schedule (for schedule-free and
  learning-rate-free optimizers, their multiplier; for a `wsd_fork` arm, its peak): a list, or
  `{"log_range": [lo, hi], "num": n}`, n log-spaced factors from lo to hi;
* `grid`: optionally, `{field: [values, ...]}`: any config field an arm may override, crossed with
  `lr_scale`;
* `seeds`: the tuning seeds (default: the study's first seed, whose final run is then a tuning run
  reused, not trained again);
* `metric`: `"validation_accuracy"` (default, higher is better) or `"validation_loss"`;
* `extend_edges`: up to this many more factors past an edge of the grid where the best point lies
  on it (default 0).

The protocol (`PROTOCOL`): phase 1 trains each arm at each grid point for the tuning seeds and
chooses, per arm (and budget), the point with the best mean validation metric over the tuning
seeds, a diverged run counting as the worst (ties: the smaller scale); phase 2 trains each arm at
its chosen point for the study's seeds, paired as every study is, and the report's tables and
tests read phase 2's test metrics. Test data chooses nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

METRICS = {"validation_accuracy": True, "validation_loss": False}  # -> higher is better
CHOSEN = "chosen"  # the point a phase-2 cell trains: its arm's choice, read when the cell runs
PROTOCOL = (
  "Phase 1 trains each arm at each point of its grid for the tuning seeds and chooses, per arm, "
  "the point with the best mean {metric} over those seeds (a diverged run counts as the worst; "
  "ties go to the smaller scale); phase 2 trains each arm at its chosen point for the study's "
  "seeds, with the same initialisation and data order per seed for every arm. The tables and "
  "tests below read phase 2's test metrics; test data chose nothing."
)


@dataclasses.dataclass(frozen=True)
class Point:
  """One grid point: a factor of the schedule and overrides of other fields."""

  lr_scale: float
  overrides: tuple[tuple[str, Any], ...] = ()

  @property
  def id(self) -> str:
    """A folder-safe name: `lr_0.25`, `lr_2-weight_decay_0.001`."""
    parts = [f"lr_{self.lr_scale:g}"] + [f"{k}_{_text(v)}" for k, v in self.overrides]
    return "-".join(parts)


def _text(value: Any) -> str:
  text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
  return "".join(c if c.isalnum() or c in "._" else "_" for c in text)[:40]


@dataclasses.dataclass(frozen=True)
class Tune:
  scales: tuple[float, ...]  # ascending
  grid: tuple[tuple[str, tuple], ...]
  seeds: tuple[int, ...]
  metric: str
  extend_edges: int
  ratio: float  # between neighbouring scales: the step of an extension past an edge

  @property
  def higher_is_better(self) -> bool:
    return METRICS[self.metric]

  def points(self) -> list[Point]:
    """The grid: every scale crossed with every combination of the other fields."""
    return [Point(s, combo) for s in self.scales for combo in self.combos()]

  def combos(self) -> list[tuple[tuple[str, Any], ...]]:
    """Every combination of the grid's other fields (one empty one without them)."""
    fields = [f for f, _ in self.grid]
    return [tuple(zip(fields, c)) for c in itertools.product(*(v for _, v in self.grid))]

  def extension(self, side: str, level: int) -> list[Point]:
    """The points `level` steps past the grid's lowest (`side="low"`) or highest scale, one per
    combination of the other fields."""
    edge = (
      self.scales[0] / self.ratio**level if side == "low" else self.scales[-1] * self.ratio**level
    )
    return [Point(float(f"{edge:.6g}"), combo) for combo in self.combos()]

  def all_points(self) -> dict[str, Point]:
    """Every point a study may train, by id: the grid, then each edge's extensions."""
    out = {p.id: p for p in self.points()}
    for side in ("low", "high"):
      for level in range(1, self.extend_edges + 1):
        out.update({p.id: p for p in self.extension(side, level)})
    return out


def _plain(value: Any) -> Any:
  return value.to_dict() if hasattr(value, "to_dict") else value


def _positive(values: Sequence[Any], where: str) -> tuple[float, ...]:
  out = tuple(values)
  if not out or any(isinstance(v, bool) or not isinstance(v, int | float) for v in out):
    raise ValueError(f"{where} must be positive numbers, got {list(out)}")
  if any(not (0 < v < math.inf) for v in out):
    raise ValueError(f"{where} must be positive numbers, got {list(out)}")
  if len(set(out)) != len(out):
    raise ValueError(f"{where} must not repeat a value, got {list(out)}")
  return tuple(sorted(float(v) for v in out))


def parse(study: Mapping[str, Any], seeds: tuple[int, ...]) -> Tune | None:
  """`config.study.tune` checked (None when the study tunes nothing); `seeds`: the study's."""
  spec = _plain(study.get("tune", None)) if hasattr(study, "get") else None
  if not spec:
    return None
  spec = dict(spec)
  known = {"lr_scale", "grid", "seeds", "metric", "extend_edges"}
  unknown = sorted(set(spec) - known)
  if unknown:
    raise ValueError(f"config.study.tune has no field {unknown[0]!r}; its fields: {sorted(known)}")
  scale = _plain(spec.get("lr_scale", (1.0,)))
  if isinstance(scale, Mapping):
    if set(scale) != {"log_range", "num"} or len(scale["log_range"]) != 2:
      raise ValueError(
        "config.study.tune.lr_scale must be a list of factors or "
        f'{{"log_range": [lo, hi], "num": n}}, got {scale!r}'
      )
    lo, hi = _positive(scale["log_range"], "config.study.tune.lr_scale.log_range")
    num = scale["num"]
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
      raise ValueError(f"config.study.tune.lr_scale.num must be an integer >= 2, got {num!r}")
    scales = tuple(float(f"{lo * (hi / lo) ** (i / (num - 1)):.6g}") for i in range(num))
  else:
    scales = _positive(
      scale if isinstance(scale, list | tuple) else [scale], "config.study.tune.lr_scale"
    )
  grid = dict(_plain(spec.get("grid", None) or {}))
  for field, values in grid.items():
    if not isinstance(values, list | tuple) or not values:
      raise ValueError(f"config.study.tune.grid.{field} must be a non-empty list, got {values!r}")
  tune_seeds = tuple(spec.get("seeds", None) or seeds[:1])
  if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in tune_seeds):
    raise ValueError(f"config.study.tune.seeds must be integers >= 0, got {list(tune_seeds)}")
  metric = spec.get("metric", "validation_accuracy")
  if metric not in METRICS:
    raise ValueError(f"config.study.tune.metric must be one of {list(METRICS)}, got {metric!r}")
  extend = spec.get("extend_edges", 0)
  if isinstance(extend, bool) or not isinstance(extend, int) or extend < 0:
    raise ValueError(f"config.study.tune.extend_edges must be an integer >= 0, got {extend!r}")
  ratio = scales[-1] / scales[-2] if len(scales) > 1 else 2.0
  return Tune(
    scales=scales,
    grid=tuple((f, tuple(v)) for f, v in grid.items()),
    seeds=tune_seeds,
    metric=metric,
    extend_edges=extend,
    ratio=ratio,
  )


def scaled(schedule: Any, factor: float) -> dict[str, Any]:
  """A schedule config multiplied by `factor` (the `scale` schedule around it)."""
  return {"name": "scale", "schedule": _plain(schedule), "factor": factor}


# ------------------------------------------------------------------ choosing on validation data


def point_value(summary: Mapping[str, Any] | None, metric: str) -> float | None:
  """A run's final validation metric; None for a diverged run (or one without the metric)."""
  if summary is None or summary.get("diverged"):
    return None
  value = summary.get(f"final_{metric}")
  return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def rank_value(values: Sequence[float | None], higher_is_better: bool) -> float:
  """The mean over seeds, signed so that larger is better; a missing value is the worst."""
  if not values or any(v is None for v in values):
    return -math.inf
  mean = sum(values) / len(values)
  return mean if higher_is_better else -mean


def choose(table: Sequence[tuple[Point, Sequence[float | None]]], higher_is_better: bool) -> Point:
  """The point of `table` ((point, its values per tuning seed)) with the best mean; ties go to
  the smaller scale, then the earlier point."""
  if not table:
    raise ValueError("table must hold at least one point, got none")
  order = sorted(range(len(table)), key=lambda i: (table[i][0].lr_scale, i))
  best = max(order, key=lambda i: (rank_value(table[i][1], higher_is_better), -order.index(i)))
  return table[best][0]


def at_edge(point: Point, scales: Sequence[float]) -> str | None:
  """ "low" or "high" where `point`'s scale is the smallest or largest tried, else None."""
  if len(set(scales)) < 2:
    return None
  if point.lr_scale <= min(scales):
    return "low"
  return "high" if point.lr_scale >= max(scales) else None


def sensitivity(
  table: Sequence[tuple[Point, Sequence[float | None]]], higher_is_better: bool, within: float
) -> int:
  """How many points lie within `within` of the best mean (the best included)."""
  ranks = [rank_value(v, higher_is_better) for _, v in table]
  best = max(ranks)
  return sum(1 for r in ranks if math.isfinite(r) and best - r <= within + 1e-12)


def read_summary(folder: str) -> dict | None:
  path = os.path.join(folder, "summary.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
