"""The tuning section of a tuned study's report: the protocol, each arm's chosen point, how flat
its response is, how much the choice flattered it (optimism), what each rung kept, the edge
warnings, and the compute of each phase."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrjax import stats

EDGE = "best at the edge: widen the grid"


def _mean(values: Mapping[str, Any]) -> float:
  finite = [v for v in values.values() if v is not None]
  return sum(finite) / len(finite) if finite and len(finite) == len(values) else math.nan


def tuning_lines(results: Mapping[str, Any]) -> list[str]:
  """The Markdown section (empty without a `tuning` entry)."""
  tuning = results.get("tuning")
  if not tuning:
    return []
  metric = tuning["metric"].replace("_", " ")
  seeds = ", ".join(map(str, tuning["seeds"]))
  scales = ", ".join(f"{s:g}" for s in tuning["lr_scale"])
  lines = [
    "## Tuning",
    "",
    tuning["protocol"],
    "",
    f"Grid: lr_scale {scales}"
    + "".join(f"; {f} {', '.join(map(str, v))}" for f, v in tuning["grid"].items())
    + (f"; up to {tuning['extend_edges']} more past an edge" if tuning["extend_edges"] else "")
    + f". Tuning seeds: {seeds}. Points within 1 point of the arm's best {metric} (rung 0): how "
    "flat the response is there (more is flatter). Optimism: the chosen point's mean on the "
    "tuning seeds minus its mean on the final seeds, in points (validation data both; a choice "
    "on noisy runs flatters the point it chose).",
    "",
  ]
  rows = []
  for name in stats.arm_names(results):
    for entry in [e for e in tuning["arms"].values() if e["arm"] == name]:
      if "chosen" not in entry:
        rows.append([stats.label(results, name), "phase 1 not finished", "", "", "", "", ""])
        continue
      chosen = next(g for g in entry["grid"] if g["point"] == entry["chosen"])
      fields = "".join(f", {k} {v}" for k, v in entry["chosen_overrides"].items())
      value = _mean(chosen["values"])
      diverged = sum(1 for g in entry["grid"] if g["diverged"])
      optimism = entry.get("optimism")
      rungs = " > ".join(str(len(r["trained"])) for r in entry.get("rungs", []))
      rows.append(
        [
          stats.label(results, name),
          f"{entry['chosen_lr_scale']:g}{fields}",
          "n/a" if not math.isfinite(value) else f"{value:.4f}",
          f"{entry['within_1_point']} of {len(entry['grid'])}"
          + (f" ({diverged} diverged)" if diverged else ""),
          "n/a" if optimism is None else f"{100 * optimism:+.1f}",
          rungs,
          EDGE if entry["edge"] else "",
        ]
      )
  header = ["Arm", "Chosen lr_scale", f"Mean {metric}", "Points within 1 pt", "Optimism (pt)"]
  header += ["Points per rung", "Note"]
  lines += ["| " + " | ".join(header) + " |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
  lines += ["| " + " | ".join(str(c).replace("|", r"\|") for c in row) + " |" for row in rows]
  c = tuning["compute"]
  lines += [
    "",
    f"Compute: phase 1 trained {c['phase_1_runs']} runs ({c['phase_1_epochs']:g} epochs) on the "
    f"tuning seeds, phase 2 {c['phase_2_runs']} ({c['phase_2_epochs']:g} epochs) on the final "
    "seeds; no final run is a tuning run.",
    "",
    "![Learning-rate response](figures/lr_response.png)",
  ]
  return lines
