"""The oneDNN train step on the installed oneDNN and on another build, against PyTorch's.

    python benchmarks/onednn_builds.py ROOT [processes]  # 12 minutes; onednn_builds.{json,md}
    python benchmarks/onednn_builds.py --markdown        # the .md again from the .json

`ROOT` holds the other oneDNN's include/ and lib/, e.g. the [onednn-cpu] extra's packages:
`pip install --no-deps --prefix ROOT onednn-cpu-gomp onednn-devel-cpu-gomp`. Each contender's
train step (`onednn_layers.py --step`: images/s after a warm-up, the median of 9 rounds) runs in
`processes` fresh processes, the contenders in alternating order, since one process's figure
differs from the next one's by up to a third.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from timing import HERE, in_fresh_processes, median_and_range, write_outputs

MODELS = ("resnet20", "convnet")
STATUS = "from lrjax import runtime; print(runtime.setup().status())"


def _status(env: dict[str, str]) -> str:
  out = subprocess.run(
    [sys.executable, "-c", STATUS], env=env, capture_output=True, text=True, check=True
  )
  return out.stdout.strip().splitlines()[-1]


def measure(root: str, processes: int, rounds: int = 9) -> dict:
  if not os.path.isdir(os.path.join(root, "include", "oneapi", "dnnl")):
    sys.exit(f"ROOT must hold include/oneapi/dnnl and lib/ of a oneDNN build, got {root!r}")
  with tempfile.TemporaryDirectory() as cache:
    other = {**os.environ, "LRJAX_ONEDNN_ROOT": root, "LRJAX_ONEDNN_CACHE": cache}
    # (label, environment, contender of onednn_layers.py --step)
    contenders = [
      ("oneDNN, installed", dict(os.environ), "onednn"),
      ("oneDNN, ROOT", other, "onednn"),
      ("PyTorch channels-last", dict(os.environ), "torch channels-last"),
    ]
    result = {
      "builds": {label: _status(env) for label, env, _ in contenders[:2]},
      "root": root,
      "processes": processes,
      "rounds": rounds,
      "models": {},
    }
    for model in MODELS:
      step = [os.path.join(HERE, "onednn_layers.py"), "--step", model]
      commands = [(label, [*step, name, str(rounds)], env) for label, env, name in contenders]
      result["models"][model] = in_fresh_processes(commands, processes)
      print(model, result["models"][model], flush=True)
  return result


def markdown(result: dict) -> str:
  labels = list(next(iter(result["models"].values())))
  lines = [f"- {label}: `{status}`" for label, status in result["builds"].items()]
  lines += [
    "",
    f"Train step, images/s: the median (and range) over {result['processes']} fresh processes a "
    f"contender, each the median of {result['rounds']} rounds after a warm-up; batch 128, "
    f"{os.cpu_count()} CPUs.",
    "",
    "| model | " + " | ".join(labels) + " | ROOT / installed |",
    "|---|" + "---|" * (len(labels) + 1),
  ]
  for model, ips in result["models"].items():
    cells = " | ".join(median_and_range(ips[k]) for k in labels)
    ratio = np.median(ips[labels[1]]) / np.median(ips[labels[0]])
    lines.append(f"| {model} | {cells} | {ratio:.2f} |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  if sys.argv[1:] == ["--markdown"]:
    with open(os.path.join(HERE, "onednn_builds.json")) as f:
      result = json.load(f)
  elif len(sys.argv) in (2, 3):
    result = measure(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 4)
  else:
    sys.exit(__doc__)
  write_outputs("onednn_builds", result, markdown(result))
