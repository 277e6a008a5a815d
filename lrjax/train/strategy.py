"""How K members that share their data order train: one vmapped program, or one after another.

A population runs the members' steps as one `jax.vmap`ped program: one batch transfer, K
updates. Whether that is faster than K sequential steps depends on the hardware (on CPU a
vmapped convolution becomes a grouped one, which XLA runs slowly: `benchmarks/run.py` measures
it about 3x slower), so "auto" trains one after another on CPU without measuring, and elsewhere
`probe`s both on this machine once and keeps the answer in a record file, so that a resumed
study decides as its first try did.
"""

from __future__ import annotations

import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from lrjax import runtime as runtime_lib
from lrjax.config.experiment import Experiment
from lrjax.config.study import POPULATION as MODES
from lrjax.files.atomic import read_json, write_json
from lrjax.train import build
from lrjax.train.trainer import Member, Trainer


def probe(runs: list[build.Run], steps: int = 3) -> dict[str, float]:
  """Times one population step against one step of each member, on a real batch.

  Both programs are compiled and warmed up first; the figure is the median of `steps` timings.
  Returns milliseconds for each and their ratio (population / sequential, < 1 means faster).
  """
  with tempfile.TemporaryDirectory() as tmp:
    members = [Member(r, os.path.join(tmp, str(i))) for i, r in enumerate(runs)]
    population = Trainer(members, tmp, vmapped=True)
  r0 = runs[0]
  batch = r0.train_batch(np.arange(r0.experiment.batch_size), 0)
  states = population.init_state()
  state = r0.init_state()
  singles = [jax.tree.map(jnp.copy, state) for _ in runs]  # each is donated by its own steps

  def time_population():
    nonlocal states
    t = time.perf_counter()
    states, m = population.train_step(states, batch)
    jax.block_until_ready(m)
    return time.perf_counter() - t

  def time_sequential():
    t = time.perf_counter()
    for i, r in enumerate(runs):
      singles[i], m = r.steps.train(singles[i], batch, r.step_schedules)
      jax.block_until_ready(m)
    return time.perf_counter() - t

  time_population(), time_sequential()  # compile and warm up
  p = float(np.median([time_population() for _ in range(steps)]))
  s = float(np.median([time_sequential() for _ in range(steps)]))
  return {"population_ms": p * 1e3, "sequential_ms": s * 1e3, "ratio": p / s}


def platform() -> str:
  return jax.default_backend()


def use_population(mode: str, runs: list[Experiment], record_path: str, say=print) -> bool:
  """The mode's answer (`config.study.population`); for "auto", decided once and kept in
  `record_path` (see the module)."""
  if mode not in MODES:
    raise ValueError(f"config.study.population must be one of {list(MODES)}, got {mode!r}")
  if mode != "auto":
    return mode == "always"
  if os.path.exists(record_path):
    return read_json(record_path)["population"]
  where = platform()
  if where == "cpu":
    record = {"population": False, "platform": where, "probe": None}
    say("on CPU the runs train one after another (a population is slower there)")
  else:
    figures = probe([build.build(e, runtime_lib.for_run(e.runtime)) for e in runs])
    record = {"population": figures["ratio"] < 1.0, "platform": where, "probe": figures}
    say(
      f"probe: {len(runs)} runs as one population {figures['population_ms']:.0f} ms/step, one "
      f"after another {figures['sequential_ms']:.0f} ms/step: "
      + ("population" if record["population"] else "one after another")
    )
  write_json(record_path, record)
  return record["population"]
