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


def schedule_in_step(model: str = "convnet", n: int = 20, rounds: int = 3) -> dict:
  with tempfile.TemporaryDirectory() as tmp:
    run = loop.Run(_config(model, "synthetic:28x28x1:2048:256:10"), tmp)
    state = run.init_state()
    batch = run.train_batch(np.arange(2048), 0)
    schedules = {
      "constant": lrjax.constant(0.1),
      "cosine_decay": lrjax.cosine_decay(0.1, 10_000),
      "polynomial": lrjax.polynomial_decay(0.1, 10_000, 2.0),
      "staircase_exponential": lrjax.exponential_decay(0.1, 1000, 0.5, staircase=True),
      "warmup_cosine": lrjax.warmup_cosine_decay(0.0, 0.1, 500, 10_000),
      "join_of_three": lrjax.join(
        [lrjax.linear_decay(0.0, 500, 0.1), lrjax.constant(0.1), lrjax.cosine_decay(0.1, 5000)],
        [500, 3000],
      ),
    }
    times = {k: [] for k in schedules}
    for _ in range(rounds):  # interleaved, so machine drift hits every schedule alike
      for name, s in schedules.items():
        dt, state = _step_time(run, state, batch, s, n)
        times[name].append(dt)
  base = float(np.median(times["constant"]))
  return {
    "model": model,
    "constant_step_ms": base * 1e3,
    "ratios": {k: float(np.median(v)) / base for k, v in times.items() if k != "constant"},
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
  """K schedule variants trained as one vmapped program against K sequential steps.

  Same batch for all members (a study shares data order), per-member state and schedule values.
  """
  import functools

  import jax.numpy as jnp

  from lrjax.train import step as step_lib

  with tempfile.TemporaryDirectory() as tmp:
    run = loop.Run(config or _config(model, "synthetic:28x28x1:2048:256:10"), tmp)
    state = run.init_state()
    batch = run.train_batch(np.arange(2048), 0)
    schedules = [lrjax.linear_decay(0.1 * (i + 1) / k, 10_000) for i in range(k)]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *schedules)
    states = jax.tree.map(lambda x: jnp.stack([x] * k), state)
    mean, std = np.float32(run.ds.mean), np.float32(run.ds.std)
    vstep = jax.jit(
      jax.vmap(
        functools.partial(step_lib.train_step, model=run.model, mean=mean, std=std, augment=False),
        in_axes=(0, None, 0),
      )
    )
    seq, pop = [], []
    for _ in range(rounds):
      t = 0.0
      for s in schedules:
        dt, state = _step_time(run, state, batch, s, n)
        t += dt
      seq.append(t)
      states, m = vstep(states, batch, stacked)
      jax.block_until_ready(m)
      t0 = time.perf_counter()
      for _ in range(n):
        states, m = vstep(states, batch, stacked)
      jax.block_until_ready(m)
      pop.append((time.perf_counter() - t0) / n)
  return {
    "model": model,
    "members": k,
    "platform": jax.default_backend(),
    "sequential_ms": float(np.median(seq)) * 1e3,
    "population_ms": float(np.median(pop)) * 1e3,
    "population_over_sequential": float(np.median(pop) / np.median(seq)),
  }
