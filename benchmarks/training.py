"""Costs of the schedule inside training: step time, compilations, host overhead.

- schedule_in_step: the same jitted train step driven by `constant` and by each schedule; the
  figure is step time with the schedule / step time with the constant (target <= 1.02);
- compilations: train-step compilations over a 3-epoch run whose lr changes every step, and
  those a second run that differs only in schedule values adds (target: 1, then 0);
- host_overhead: an epoch's wall time / (steps x the device time of one step) (target <= 1.05).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import jax
import numpy as np

import lrjax
from lrjax.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(model: str, dataset: str, epochs: int = 1):
  sys.path.insert(0, ROOT)
  from configs import smoke

  config = smoke.get_config()
  config.model, config.dataset, config.augment = model, dataset, False
  config.batch_size, config.num_epochs, config.eval_batch_size = 128, epochs, 1000
  config.checkpoint_every_epochs = 100
  return config


def _step_time(run, state, batch, schedule, n: int) -> tuple[float, object]:
  state, m = run.train_step(state, batch, schedule)
  jax.block_until_ready(m)
  t = time.perf_counter()
  for _ in range(n):
    state, m = run.train_step(state, batch, schedule)
  jax.block_until_ready(m)
  return (time.perf_counter() - t) / n, state


def schedule_in_step(model: str = "convnet", batch_size: int = 32, rounds: int = 81) -> dict:
  """Step time with each schedule / step time with a constant lr, paired.

  Each round times one constant-lr step and one step with the schedule back to back (alternating
  which goes first); the figure is the median over rounds of their ratio, with its quartiles.
  A second constant (other value, same program) is the control: its ratio shows the noise. A
  small batch makes the step short, so the schedule's share of it is larger (a stricter test)
  and more rounds fit.
  """
  with tempfile.TemporaryDirectory() as tmp:
    config = _config(model, "synthetic:28x28x1:2048:256:10")
    config.batch_size = batch_size
    run = loop.Run(config, tmp)
    state = run.init_state()
    batch = run.train_batch(np.arange(2048), 0)
    constant = lrjax.constant(0.1)
    schedules = {
      "control: constant": lrjax.constant(0.05),
      "cosine_decay": lrjax.cosine_decay(0.1, 10_000),
      "polynomial": lrjax.polynomial_decay(0.1, 10_000, 2.0),
      "staircase_exponential": lrjax.exponential_decay(0.1, 1000, 0.5, staircase=True),
      "warmup_cosine": lrjax.warmup_cosine_decay(0.0, 0.1, 500, 10_000),
      "join_of_three": lrjax.join(
        [lrjax.linear_decay(0.0, 500, 0.1), lrjax.constant(0.1), lrjax.cosine_decay(0.1, 5000)],
        [500, 3000],
      ),
    }

    def one(schedule):
      nonlocal state
      t = time.perf_counter()
      state, m = run.train_step(state, batch, schedule)
      jax.block_until_ready(m)
      return time.perf_counter() - t

    for s in [constant, *schedules.values()]:  # compile (once: same kind of pytree) and warm up
      one(s), one(s)
    ratios, base = {k: [] for k in schedules}, []
    for r in range(rounds):
      for name, s in schedules.items():
        if r % 2:
          a, b = one(s), one(constant)
        else:
          b, a = one(constant), one(s)
        ratios[name].append(a / b)
        base.append(b)
  return {
    "model": model,
    "batch_size": batch_size,
    "rounds": rounds,
    "constant_step_ms": float(np.median(base)) * 1e3,
    "ratios": {k: float(np.median(v)) for k, v in ratios.items()},
    "ratio_quartiles": {
      k: [float(q) for q in np.percentile(v, [25, 75])] for k, v in ratios.items()
    },
  }


def compilations_and_overhead(model: str = "convnet") -> dict:
  dataset = "synthetic:28x28x1:6400:1000:10"
  with tempfile.TemporaryDirectory() as tmp:
    config = _config(model, dataset, epochs=3)
    first = loop.train_and_evaluate(config, os.path.join(tmp, "a"), quiet=True)
    config.schedule = {"name": "linear_decay", "init_value": 0.05, "total_steps": {"fraction": 1.0}}
    second = loop.train_and_evaluate(config, os.path.join(tmp, "b"), quiet=True)
    run = second["run"]
    state = second["state"]
    with open(os.path.join(tmp, "b", "metrics.jsonl")) as f:
      import json

      records = [json.loads(line) for line in f]
    # Device time of one step in steady state, the batch already placed.
    batch = run.train_batch(np.arange(6400), 0)
    device_step, _ = _step_time(run, state, batch, run.schedule, 20)
  # Epochs after the first (which includes compilation) measure the loop's steady state.
  epoch_seconds = float(np.median([r["seconds"] for r in records[1:]]))
  return {
    "model": model,
    "first_run_compilations": first["compilations"],
    "second_run_new_compilations": second["compilations"],
    "steps_per_epoch": run.steps_per_epoch,
    "epoch_seconds": epoch_seconds,
    "device_step_ms": device_step * 1e3,
    "host_overhead_ratio": epoch_seconds / (run.steps_per_epoch * device_step),
  }


def population(
  model: str = "convnet", k: int = 4, n: int = 5, rounds: int = 2, config=None
) -> dict:
  """K schedules of different kinds trained as one vmapped program against K sequential steps.

  This is the probe `lrjax compare` runs to choose (`lrjax.compare.population.probe`): same
  batch for all members (a study shares its data order), per-member state and schedule.
  `rounds` repeats the probe and keeps the median ratio.
  """
  import copy

  from lrjax.compare import population as population_lib

  base = config or _config(model, "synthetic:28x28x1:2048:256:10")
  kinds = [
    {"name": "constant", "value": 0.1},
    {"name": "linear_decay", "init_value": 0.1, "total_steps": 10_000},
    {"name": "cosine_decay", "init_value": 0.1, "decay_steps": 10_000},
    {"name": "step_decay", "init_value": 0.1, "drop_factor": 0.5, "drop_every": 1000},
  ]
  with tempfile.TemporaryDirectory() as tmp:
    runs = []
    for i in range(k):
      c = copy.deepcopy(base)
      c.schedule = kinds[i % len(kinds)]
      runs.append(loop.Run(c, os.path.join(tmp, str(i))))
    probes = [population_lib.probe(runs, steps=n) for _ in range(rounds)]
  best = sorted(probes, key=lambda p: p["ratio"])[len(probes) // 2]
  return {
    "model": base.model,
    "members": k,
    "platform": jax.default_backend(),
    "sequential_ms": best["sequential_ms"],
    "population_ms": best["population_ms"],
    "population_over_sequential": best["ratio"],
  }
