"""Durations in words, for progress lines: `duration` and `so_far`."""

from __future__ import annotations

import math


def duration(seconds: float) -> str:
  """`1h02m`, `3m07s` or `12s`.

  Example:
    >>> from lrjax.clock import duration
    >>> duration(3725), duration(187), duration(12.4)
    ('1h02m', '3m07s', '12s')
  """
  if not math.isfinite(seconds):
    return "?"
  s = round(max(seconds, 0.0))
  if s >= 3600:
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
  return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def so_far(elapsed: float, done: int, total: int) -> str:
  """`3m07s so far, about 1m02s left` at the pace so far (without the estimate before any is
  done or after all are)."""
  text = f"{duration(elapsed)} so far"
  if 0 < done < total:
    text += f", about {duration(elapsed / done * (total - done))} left"
  return text
