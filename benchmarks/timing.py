"""Helpers the benchmark scripts share: a median timing and writing a result's two files."""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def median_ms(fn, *args, n: int) -> float:
  """Median wall time of `fn(*args)` in milliseconds over `n` calls, after one warm-up call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(n):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return float(np.median(times)) * 1e3


def write_outputs(stem: str, data, md: str) -> None:
  """Writes benchmarks/<stem>.json and benchmarks/<stem>.md, and prints the Markdown."""
  with open(os.path.join(HERE, f"{stem}.json"), "w") as f:
    json.dump(data, f, indent=2)
  with open(os.path.join(HERE, f"{stem}.md"), "w") as f:
    f.write(md)
  print(md)
