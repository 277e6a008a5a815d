"""An arm's tuning grid as one vmapped population against its points one after another.

    python benchmarks/tuning_grid.py [rounds]    # about 2 minutes on two CPU cores

The grid of `study_fashion_mnist:tuned` (five factors of an arm's schedule, 0.25x-4x) differs only
in the schedule's leaf values, so its points can train as one population: one program, one batch
transfer, five updates a step. This times that population step against the five steps one after
another, on this machine (`lrjax.train.strategy.probe`, the probe `lrjax compare` runs where it
does not know the answer): the median over `rounds` probes of the ratio, for the study's ConvNet
and for ResNet-20. Writes tuning_grid.{json,md}.
"""

from __future__ import annotations

import copy
import sys

import numpy as np
from timing import build_run, measure_or_reread

from lrjax import config as config_lib
from lrjax import runtime
from lrjax.config import study as study_lib
from lrjax.train import strategy

MODELS = {"convnet": "fashion_mnist", "resnet20": "synthetic:28x28x1:2048:256:10"}


def measure(rounds: int = 3, arm: str = "cosine_annealing") -> dict:
  rt = runtime.setup()
  base = config_lib.load("study_fashion_mnist:tuned")
  out = {"runtime": rt.status(), "arm": arm, "rounds": rounds, "models": {}}
  for model, dataset in MODELS.items():
    config = copy.deepcopy(base)
    with config.unlocked():
      config.model, config.dataset = model, dataset
    study = study_lib.parse(config)
    points = study.tune.points()
    runs = [build_run(study.run(arm, 0, None, p)) for p in points]
    probes = [strategy.probe(runs, steps=5) for _ in range(rounds)]
    out["models"][model] = {
      "points": [p.id for p in points],
      "population_ms": float(np.median([p["population_ms"] for p in probes])),
      "sequential_ms": float(np.median([p["sequential_ms"] for p in probes])),
      "ratios": [p["ratio"] for p in probes],
    }
    print(model, out["models"][model], flush=True)
  return out


def markdown(result: dict) -> str:
  lines = [
    f"{result['runtime']}; the grid of `{result['arm']}` in `study_fashion_mnist:tuned` "
    f"({len(next(iter(result['models'].values()))['points'])} points), batch 128; medians of "
    f"{result['rounds']} probes (5 timed steps each).",
    "",
    "| model | population step | points one after another | population / sequential |",
    "|---|---:|---:|---:|",
  ]
  for model, r in result["models"].items():
    ratio = float(np.median(r["ratios"]))
    lines.append(
      f"| {model} | {r['population_ms']:.0f} ms | {r['sequential_ms']:.0f} ms | {ratio:.2f} |"
    )
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  rounds = int(sys.argv[1]) if sys.argv[1:] and sys.argv[1] != "--markdown" else 3
  measure_or_reread("tuning_grid", lambda: measure(rounds), markdown)
