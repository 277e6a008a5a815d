"""Tuned studies: every arm at its own best point of a grid, chosen on validation data.

What a study tunes is `config.study.tune` (`lrjax.config.tune`: the grid, its seeds, its metric,
its extensions past an edge). The protocol (`PROTOCOL`): phase 1 trains each arm at each grid
point for the tuning seeds and chooses, per arm (and budget), the point with the best mean
validation metric over the tuning seeds, a diverged run counting as the worst (ties: the smaller
scale); phase 2 trains each arm at its chosen point for the study's seeds, paired as every study
is, and the report's tables and tests read phase 2's test metrics. Test data chooses nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lrjax.config.tune import Point

CHOSEN = "chosen"  # the point a phase-2 cell trains: its arm's choice, read when the cell runs
PROTOCOL = (
  "Phase 1 trains each arm at each point of its grid for the tuning seeds and chooses, per arm, "
  "the point with the best mean {metric} over those seeds (a diverged run counts as the worst; "
  "ties go to the smaller scale); phase 2 trains each arm at its chosen point for the study's "
  "seeds, with the same initialisation and data order per seed for every arm. The tables and "
  "tests below read phase 2's test metrics; test data chose nothing."
)


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
