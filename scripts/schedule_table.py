"""Prints the README's schedule table: each registered schedule's formula and edge values.

    python scripts/schedule_table.py > /tmp/table.md

The formula is the first line of the `.. math::` block of the factory's docstring; the values
are those of the registered example (a horizon of 100 steps) at the edges.
"""

from __future__ import annotations

import inspect
import re

import numpy as np

import lrjax

STEPS = [0, 1, 50, 99, 100, 101, 10**9, 2**62]


def formula(factory) -> str:
  doc = inspect.getdoc(factory) or ""
  m = re.search(r"\.\. math::\s*(.+?)(?:\n\s*\n|$)", doc, re.S)
  if not m:  # a one-line formula in the summary: :math:`...`
    m = re.search(r":math:`(.+?)`", doc.split("\n\n")[0], re.S)
  if not m:
    return ""
  text = " ".join(line.strip() for line in m.group(1).splitlines())
  return text.replace("|", r"\|")


def call(name: str, example: dict) -> str:
  def show(v):
    if isinstance(v, lrjax.Schedule):
      args = ", ".join(f"{k}={show(x)}" for k, x in v.to_config().items() if k != "name")
      return f"{type(v).config_name}({args})"
    if isinstance(v, (list, tuple)):
      return "[" + ", ".join(show(x) for x in v) + "]"
    return repr(v)

  return f"`{name}(" + ", ".join(f"{k}={show(v)}" for k, v in example.items()) + ")`"


def main() -> None:
  print(
    "| schedule | formula | example | lr at t = "
    + ", ".join({10**9: "1e9", 2**62: "2^62"}.get(s, str(s)) for s in STEPS)
    + " |"
  )
  print("|---|---|---|---|")
  for name, entry in sorted(lrjax.registry().items()):
    s = entry.factory(**entry.example)
    values = np.asarray(s(np.asarray(STEPS[:-1])))
    values = [*values.tolist(), float(s(STEPS[-1]))]
    shown = ", ".join(f"{v:.4g}" for v in values)
    print(f"| `{name}` | ${formula(entry.factory)}$ | {call(name, entry.example)} | {shown} |")


if __name__ == "__main__":
  main()
