"""lrjax's XLA:CPU settings (`lrjax.train.xla_cpu`) against XLA's defaults, on the train step.

XLA reads its flags once per process, so each measurement is a child process: one with the
settings, one with `LRJAX_XLA_CPU_TUNING=0`, alternating, and the figure is the median over
rounds of the ratio of their step times (tuned / default; below 1 is faster).

    python benchmarks/cpu_flags.py        # about 2 minutes on two CPU cores
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {"resnet20": "synthetic:32x32x3:1024:256:10", "convnet": "synthetic:28x28x1:1024:256:10"}


def _child(model: str, dataset: str, n: int) -> None:
  from lrjax.train import xla_cpu

  xla_cpu.tune()
  from training import bench_config, step_time

  from lrjax.train import build

  run = build.build(bench_config(model, dataset))
  state = run.init_state()
  seconds, _ = step_time(run, state, run.train_batch(np.arange(128), 0), run.schedule, n)
  print(json.dumps({"step_ms": seconds * 1e3}))


def _step_ms(model: str, dataset: str, tuned: bool, n: int) -> float:
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["LRJAX_XLA_CPU_TUNING"] = "1" if tuned else "0"
  out = subprocess.run(
    [sys.executable, __file__, "--child", model, dataset, str(n)],
    env=env,
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  return json.loads(out.strip().splitlines()[-1])["step_ms"]


def measure(rounds: int = 3, n: int = 5, models: dict[str, str] = MODELS) -> dict:
  """Per model: step ms with and without the settings, and their ratio (median over rounds).

  `models` maps a model name to its synthetic dataset (batch 128 of it is the step's batch).
  """
  out = {}
  for model, dataset in models.items():
    tuned, default = [], []
    for r in range(rounds):
      order = (True, False) if r % 2 == 0 else (False, True)
      for t in order:
        (tuned if t else default).append(_step_ms(model, dataset, t, n))
    ratios = np.asarray(tuned) / np.asarray(default)
    out[model] = {
      "tuned_step_ms": float(np.median(tuned)),
      "default_step_ms": float(np.median(default)),
      "tuned_over_default": float(np.median(ratios)),
      "rounds": rounds,
    }
  return out


if __name__ == "__main__":
  sys.path.insert(0, HERE)
  if len(sys.argv) > 1 and sys.argv[1] == "--child":
    _child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
  else:
    print(json.dumps(measure(), indent=2))
