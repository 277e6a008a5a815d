"""lrjax's XLA:CPU settings (`lrjax.runtime.xla_cpu`) against XLA's defaults, on the train step.

XLA reads its flags once per process, so each measurement is a child process: one with
`config.runtime.xla_cpu_tuning=True`, one with False, alternating, and the figure is the median
over rounds of the ratio of their step times (tuned / default; below 1 is faster). The
convolutions are XLA's in both (`config.runtime.convolutions="xla"`): the settings are XLA's.

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


def _child(model: str, dataset: str, n: int, tuned: bool) -> None:
  from timing import build_run
  from training import bench_config, step_time

  config = bench_config(model, dataset)
  config.runtime.convolutions, config.runtime.xla_cpu_tuning = "xla", tuned
  run = build_run(config)  # applies the runtime before JAX starts, in this fresh process
  state = run.init_state()
  seconds, _ = step_time(run, state, run.train_batch(np.arange(128), 0), run.schedule, n)
  print(json.dumps({"step_ms": seconds * 1e3}))


def _step_ms(model: str, dataset: str, tuned: bool, n: int) -> float:
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PJRT_NPROC")}
  out = subprocess.run(
    [sys.executable, __file__, "--child", model, dataset, str(n), "1" if tuned else "0"],
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
    _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1")
  else:
    print(json.dumps(measure(), indent=2))
