"""ResNet-20 trained for a few epochs on each convolution path: the same accuracy within seed noise?

    python benchmarks/onednn_accuracy.py [epochs] [seeds]   # about 20 minutes on 2 CPU cores

Runs `lrjax train --config fashion_mnist --config.model=resnet20` on the real Fashion-MNIST
(Debian's IDX files) for each seed, once with XLA's convolutions
(`--config.runtime.convolutions=xla`) and once with oneDNN's, one run at a time, and writes
onednn_accuracy.{json,md}: every run's test accuracy (and wall time, in the .json), each path's
mean and seed standard deviation, and the difference of the means against the seed-to-seed
spread. The same seed gives both paths the same
initialisation and data order; they differ by float rounding in the convolutions, which grows
over training like any other rounding difference. `--markdown` rewrites the .md from the .json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from timing import HERE, write_outputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = ("xla", "onednn")  # config.runtime.convolutions


def train(path: str, seed: int, epochs: int, workdir: str) -> dict:
  command = [
    sys.executable, "-m", "lrjax", "train", "--config", "fashion_mnist",
    "--config.model=resnet20", f"--config.num_epochs={epochs}", f"--config.seed={seed}",
    "--config.progress=False", "--config.tensorboard=False", "--workdir", workdir,
    f"--config.runtime.convolutions={path}",
  ]  # fmt: skip
  start = time.perf_counter()
  proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
  if proc.returncode:
    sys.exit(f"{path} seed {seed} failed:\n{proc.stderr[-2000:]}")
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  runtime = summary["runtime"]
  line = f"convolutions: {runtime['convolutions']} {runtime.get('onednn') or ''}".strip()
  return {
    "path": path,
    "seed": seed,
    "test_accuracy": summary["final_test_accuracy"],
    "seconds": time.perf_counter() - start,
    "convolutions": line,
  }


def markdown(result: dict) -> str:
  lines = [
    f"ResNet-20 on Fashion-MNIST (28x28x1, the full training set, no augmentation), "
    f"{result['epochs']} epochs, batch 128, SGD momentum 0.9, linear decay 0.1 -> 0.",
    "",
    "| seed | XLA | oneDNN | oneDNN - XLA |",
    "|---|---|---|---|",
  ]
  acc = {(r["path"], r["seed"]): r["test_accuracy"] for r in result["runs"]}
  for seed in result["seeds"]:
    x, o = acc["xla", seed], acc["onednn", seed]
    lines.append(f"| {seed} | {x:.4f} | {o:.4f} | {o - x:+.4f} |")
  p, d = result["paths"], result["difference"]
  lines += [
    f"| mean ± seed std | {p['xla']['mean']:.4f} ± {p['xla']['std']:.4f} | "
    f"{p['onednn']['mean']:.4f} ± {p['onednn']['std']:.4f} | {d['mean']:+.4f} |",
    "",
    f"The paths differ by {abs(d['mean']):.4f} in mean test accuracy; seeds differ by up to "
    f"{d['seed_spread']:.4f} within a path.",
  ]
  return "\n".join(lines) + "\n"


def main(epochs: int = 2, seeds: int = 2) -> dict:
  runs = []
  with tempfile.TemporaryDirectory() as tmp:
    for seed in range(seeds):
      for path in PATHS:
        runs.append(train(path, seed, epochs, os.path.join(tmp, f"{path}{seed}")))
        print(runs[-1], flush=True)
  acc = {p: [r["test_accuracy"] for r in runs if r["path"] == p] for p in PATHS}
  paths = {p: {"mean": float(np.mean(a)), "std": float(np.std(a, ddof=1))} for p, a in acc.items()}
  result = {
    "epochs": epochs,
    "seeds": list(range(seeds)),
    "runs": runs,
    "paths": paths,
    "difference": {
      "mean": paths["onednn"]["mean"] - paths["xla"]["mean"],
      "paired": [o - x for o, x in zip(acc["onednn"], acc["xla"])],
      "seed_spread": max(float(np.ptp(a)) for a in acc.values()),
    },
  }
  write_outputs("onednn_accuracy", result, markdown(result))
  return result


if __name__ == "__main__":
  if sys.argv[1:] == ["--markdown"]:
    with open(os.path.join(HERE, "onednn_accuracy.json")) as f:
      result = json.load(f)
    write_outputs("onednn_accuracy", result, markdown(result))
  else:
    main(*(int(a) for a in sys.argv[1:3]))
