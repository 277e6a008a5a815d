"""Costs of the schedule inside training: step time, compilations, host overhead.

- schedule_in_step: the same jitted train step driven by `constant` and by each schedule; the
  figure is step time with the schedule / step time with the constant (target <= 1.02);
- compilations: train-step compilations over a 3-epoch run whose lr changes every step, and
  those a second run that differs only in schedule values adds (target: 1, then 0);
- host_overhead: an epoch's wall time / (steps x the device time of one step) (target <= 1.05).
"""

from __future__ import annotations

import os
import tempfile
import time

import jax
import numpy as np
from timing import build_run

import lrjax
from lrjax.train import Member, Trainer, train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench_config(model: str, dataset: str, epochs: int = 1):
  from lrjax.configs import smoke

  config = smoke.get_config()
  config.model, config.dataset, config.augment = model, dataset, False
  config.batch_size, config.num_epochs, config.eval_batch_size = 128, epochs, 1000
  config.checkpoint_every_epochs = 100
  return config


def step_time(run, state, batch, schedule, n: int) -> tuple[float, object]:
  state, m = run.train_step(state, batch, schedule)
  jax.block_until_ready(m)
  t = time.perf_counter()
  for _ in range(n):
    state, m = run.train_step(state, batch, schedule)
  jax.block_until_ready(m)
  return (time.perf_counter() - t) / n, state


def schedule_in_step(model: str = "convnet", batch_size: int = 32, rounds: int = 161) -> dict:
  """Step time with each schedule / step time with a constant lr, paired.

  Each round times one constant-lr step and one step with the schedule back to back (alternating
  which goes first); the figure is the median over rounds of their ratio, with its quartiles.
  A second constant (other value, same program) is the control: its ratio shows the noise. A
  small batch makes the step short, so the schedule's share of it is larger (a stricter test)
  and more rounds fit.
  """
  config = bench_config(model, "synthetic:28x28x1:2048:256:10")
  config.batch_size = batch_size
  run = build_run(config)
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


def compilations_and_overhead(model: str = "convnet", rounds: int = 6) -> dict:
  """Compilations of real runs, and the host loop's overhead measured against the device alone.

  Overhead: the engine's epoch (`Trainer.fit` for one epoch keeping nothing (no claims,
  checkpoints or files) and no evaluation:
  batches gathered and placed from the host, metrics fetched every `log_every_steps`) against
  the same steps over batches placed beforehand and no synchronisation but the last; the two
  alternate for `rounds` rounds and the figure is the median of their ratios.
  """
  dataset = "synthetic:28x28x1:3200:1000:10"
  with tempfile.TemporaryDirectory() as tmp:
    config = bench_config(model, dataset, epochs=3)
    config.log_every_steps = 50  # as configs/default.py: the loop syncs with the device that often
    first = train_and_evaluate(config, os.path.join(tmp, "a"), quiet=True)
    config.schedule = {"name": "linear_decay", "init_value": 0.05, "total_steps": {"fraction": 1.0}}
    second = train_and_evaluate(config, os.path.join(tmp, "b"), quiet=True)
    run, state = second["run"], second["state"]
  placed = [run.train_batch(run.epoch_order(0), i) for i in range(run.steps_per_epoch)]
  with tempfile.TemporaryDirectory() as tmp:  # keep=False: nothing is written there
    trainer = Trainer(
      [Member(run, tmp)], tmp, evaluate=False, max_steps=run.steps_per_epoch, keep=False
    )

  def host_epoch():
    t = time.perf_counter()
    trainer.fit()  # a fresh state (one jitted initialisation), then the epoch's steps
    return time.perf_counter() - t

  def device_epoch():
    nonlocal state
    t = time.perf_counter()
    for batch in placed:
      state, m = run.train_step(state, batch, run.schedule)
    jax.block_until_ready(m)
    return time.perf_counter() - t

  host_epoch(), device_epoch()  # warm up
  pairs = [(host_epoch(), device_epoch()) for _ in range(rounds)]
  ratios = [h / d for h, d in pairs]
  return {
    "model": model,
    "first_run_compilations": first["compilations"],
    "second_run_new_compilations": second["compilations"],
    "steps_per_epoch": run.steps_per_epoch,
    "epoch_seconds": float(np.median([h for h, _ in pairs])),
    "device_epoch_seconds": float(np.median([d for _, d in pairs])),
    "device_step_ms": float(np.median([d for _, d in pairs])) / run.steps_per_epoch * 1e3,
    "host_overhead_ratio": float(np.median(ratios)),
    "host_overhead_quartiles": [float(q) for q in np.percentile(ratios, [25, 75])],
    "log_every_steps": config.log_every_steps,
  }


def population(
  model: str = "convnet", k: int = 4, n: int = 5, rounds: int = 2, config=None
) -> dict:
  """K schedules of different kinds trained as one vmapped program against K sequential steps.

  This is the probe `lrjax compare` runs to choose (`lrjax.train.strategy.probe`): same
  batch for all members (a study shares its data order), per-member state and schedule.
  `rounds` repeats the probe and keeps the median ratio.
  """
  from lrjax.config.experiment import Experiment
  from lrjax.train import strategy

  base = Experiment.of(config or bench_config(model, "synthetic:28x28x1:2048:256:10"))
  kinds = [
    {"name": "constant", "value": 0.1},
    {"name": "linear_decay", "init_value": 0.1, "total_steps": 10_000},
    {"name": "cosine_decay", "init_value": 0.1, "decay_steps": 10_000},
    {"name": "step_decay", "init_value": 0.1, "drop_factor": 0.5, "drop_every": 1000},
  ]
  runs = []
  for i in range(k):
    runs.append(build_run(base.replace({"schedule": kinds[i % len(kinds)]})))
  probes = [strategy.probe(runs, steps=n) for _ in range(rounds)]
  best = sorted(probes, key=lambda p: p["ratio"])[len(probes) // 2]
  return {
    "model": base.model,
    "members": k,
    "platform": jax.default_backend(),
    "sequential_ms": best["sequential_ms"],
    "population_ms": best["population_ms"],
    "population_over_sequential": best["ratio"],
  }
