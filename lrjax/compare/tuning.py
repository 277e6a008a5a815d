"""Tuned studies: every arm at its own best point of a grid, chosen on validation data.

What a study tunes is `config.study.tune` (`lrjax.config.tune`: the grid, its seeds, its strategy,
its metric, its extensions past an edge). The protocol (`PROTOCOL`, per strategy): phase 1 tunes
each arm on tuning seeds that are never final seeds, by seed-wise successive halving (or the whole
grid on every tuning seed), and chooses, per arm (and budget), the best point by mean validation
metric, a diverged run counting as the worst (ties: the smaller scale); phase 2 trains each arm at
its chosen point on the final seeds, paired as every study is. Validation data chooses the points
and the recommended arm; the final seeds' test data chooses nothing and confirms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lrjax.config.tune import Point

CHOSEN = "chosen"  # the point a phase-2 cell trains: its arm's choice, read when the cell runs
PROTOCOL = {
  "halving": (
    "Phase 1 tunes each arm on seeds no final run uses ({seeds}), by seed-wise successive "
    "halving: every point of its grid on the first, the better half by mean {metric} over the "
    "seeds so far on the next, and so on, every run trained to the end; the arm's point is the "
    "best the last rung kept (a diverged run counts as the worst; ties go to the smaller scale). "
    "Phase 2 trains each arm at its point on the final seeds ({final}), with the same "
    "initialisation and data order per seed for every arm. Validation data chose each point and "
    "the recommended arm; the final seeds' test data chose nothing and confirms."
  ),
  "grid": (
    "Phase 1 tunes each arm on seeds no final run uses ({seeds}): every point of its grid on "
    "every tuning seed; the arm's point has the best mean {metric} over them (a diverged run "
    "counts as the worst; ties go to the smaller scale). Phase 2 trains each arm at its point on "
    "the final seeds ({final}), with the same initialisation and data order per seed for every "
    "arm. Validation data chose each point and the recommended arm; the final seeds' test data "
    "chose nothing and confirms."
  ),
}


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


def rank(table: Sequence[tuple[Point, Sequence[float | None]]], higher_is_better: bool) -> list:
  """The points of `table` ((point, its values per tuning seed)), best mean first; ties go to
  the smaller scale, then the earlier point."""
  if not table:
    raise ValueError("table must hold at least one point, got none")
  key = lambda i: (-rank_value(table[i][1], higher_is_better), table[i][0].lr_scale, i)
  return [table[i][0] for i in sorted(range(len(table)), key=key)]


def choose(table: Sequence[tuple[Point, Sequence[float | None]]], higher_is_better: bool) -> Point:
  """The point of `table` ((point, its values per tuning seed)) with the best mean; ties go to
  the smaller scale, then the earlier point."""
  return rank(table, higher_is_better)[0]


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
