"""A study's schedules for one seed trained as one vmapped program (a population).

The runs of one seed share their initial weights and their batches; only the schedule differs.
`lrjax.choose(schedules, index)` makes schedules of different kinds one pytree, so the members'
train steps can be `jax.vmap`ped over their states and their index: one program, one batch
transfer, K updates. Whether that is faster than K sequential steps depends on the hardware
(on CPU a vmapped convolution becomes a grouped one, which XLA runs slowly), so
`probe` times both on this machine and `lrjax compare` uses the population only where it wins.

Each member still gets its own run directory with the files a sequential run writes
(`config.json`, `metrics.jsonl`, `summary.json`, snapshots), so reports cannot tell the two
apart. The population checkpoints its stacked state in `runs/_population/seed_<s>/` and resumes
from there when the same members are trained again.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import lrjax
from lrjax.train import checkpoint as ckpt_lib
from lrjax.train import data as data_lib
from lrjax.train import loop, snapshots, xla_cpu
from lrjax.train import step as step_lib
from lrjax.train.progress import Progress


def _member_step(state, batch, schedules, index, **kw):
  return step_lib.train_step(state, batch, lrjax.choose(schedules, index), **kw)


def _population_step(run: loop.Run):
  """The vmapped train step of `run`'s model: (states, batch, schedules, indices)."""
  cfg, ds = run.config, run.ds
  return _jit_population_step(
    run.model,
    tuple(np.asarray(ds.mean, np.float32).tolist()),
    tuple(np.asarray(ds.std, np.float32).tolist()),
    cfg.augment,
    cfg.pad,
    cfg.flip,
    run.placement.replicated,
    run.placement.batch,
  )


@functools.lru_cache(maxsize=8)
def _jit_population_step(model, mean, std, augment, pad, flip, replicated, batch_sharding):
  # Cached on what defines the program, so the probe's compilation serves the study and every
  # seed reuses it (as `step_lib.jit_steps` does for single runs).
  step = functools.partial(
    _member_step,
    model=model,
    mean=np.asarray(mean, np.float32),
    std=np.asarray(std, np.float32),
    augment=augment,
    pad=pad,
    flip=flip,
  )
  return jax.jit(
    jax.vmap(step, in_axes=(0, None, None, 0)),
    in_shardings=(replicated, batch_sharding, None, None),
    out_shardings=(replicated, None),
    donate_argnums=0,
    compiler_options=xla_cpu.compiler_options(),
  )


def _stack(trees: list[Any]) -> Any:
  return jax.tree.map(lambda *x: jnp.stack(x), *trees)


def _member(states: Any, i: int) -> Any:
  return jax.tree.map(lambda x: x[i], states)


def probe(runs: list[loop.Run], steps: int = 3) -> dict[str, float]:
  """Times one population step against one step of each member, on a real batch.

  Both programs are compiled and warmed up first; the figure is the median of `steps` timings.
  Returns milliseconds for each and their ratio (population / sequential, < 1 means faster).
  """
  r0 = runs[0]
  pop = _population_step(r0)
  schedules = tuple(r.schedule for r in runs)
  indices = jnp.arange(len(runs), dtype=jnp.int32)
  batch = r0.train_batch(np.arange(r0.config.batch_size), 0)
  state = r0.init_state()  # the members share it (same seed); initialise once
  states = _stack([state] * len(runs))
  singles = [jax.tree.map(jnp.copy, state) for _ in runs]  # each is donated by its own steps

  def time_pop():
    nonlocal states
    t = time.perf_counter()
    states, m = pop(states, batch, schedules, indices)
    jax.block_until_ready(m)
    return time.perf_counter() - t

  def time_seq():
    t = time.perf_counter()
    for i, r in enumerate(runs):
      singles[i], m = r.train_step(singles[i], batch, r.schedule)
      jax.block_until_ready(m)
    return time.perf_counter() - t

  time_pop(), time_seq()  # compile and warm up
  p = float(np.median([time_pop() for _ in range(steps)]))
  s = float(np.median([time_seq() for _ in range(steps)]))
  return {"population_ms": p * 1e3, "sequential_ms": s * 1e3, "ratio": p / s}


def train_population(
  configs: list[Any], workdirs: list[str], population_dir: str, *, quiet: bool = False
) -> list[dict[str, Any]]:
  """Trains the runs `configs` (same model, data and seed) as one population.

  Returns each member's summary, as `loop.train_and_evaluate` does for one run.
  """
  runs = []
  for cfg, out in zip(configs, workdirs):
    os.makedirs(out, exist_ok=True)
    runs.append(loop.Run(cfg, out))
  r0, cfg = runs[0], configs[0]
  spe = r0.steps_per_epoch
  for r in runs[1:]:
    if r.steps_per_epoch != spe or r.config.seed != cfg.seed:
      raise ValueError("a population's runs must share their data, batch size and seed")
  pop = _population_step(r0)
  schedules = tuple(r.schedule for r in runs)
  indices = jnp.arange(len(runs), dtype=jnp.int32)
  names = [os.path.abspath(w) for w in workdirs]
  states = _stack([r0.init_state()] * len(runs))  # the members share their seed: one init
  checkpoints = ckpt_lib.Checkpoints(population_dir, keep=cfg.keep_checkpoints)
  start_epoch, records, diverged = 0, [[] for _ in runs], {}
  if checkpoints.latest_step() is not None:
    if checkpoints.meta().get("members") == names:  # the same members: resume where they stopped
      items, meta = checkpoints.restore(states.checkpoint_items())
      states = states.replace(**items)
      start_epoch, records = int(meta["step"]) // spe, meta["records"]
      diverged = {int(k): v for k, v in meta.get("diverged", {}).items()}
    else:  # another population (the study changed): its checkpoints do not apply
      checkpoints.close()
      shutil.rmtree(population_dir)
      checkpoints = ckpt_lib.Checkpoints(population_dir, keep=cfg.keep_checkpoints)
  for r in runs:
    r._write_config()
  progress = Progress(cfg.num_epochs, spe, enabled=cfg.progress and not quiet)
  try:
    for epoch in range(start_epoch, cfg.num_epochs):
      states, sums, seconds = _train_epoch(
        r0, pop, states, schedules, indices, epoch, progress, diverged
      )
      for i, r in enumerate(runs):
        if i in diverged:  # its state is not finite: nothing to evaluate
          continue
        state = _member(states, i)
        record = {
          "epoch": epoch,
          "step": (epoch + 1) * spe,
          "lr": float(r.schedule(epoch * spe)),
          "train_loss": float(sums["loss"][i]) / spe,
          "train_accuracy": float(sums["accuracy"][i]) / spe,
          "seconds": seconds / len(runs),  # each member's share of the population's time
          "images_per_second": spe * cfg.batch_size * len(runs) / max(seconds, 1e-9),
          **r.evaluate(state),
        }
        records[i].append(record)
        if epoch in r.snapshot_epochs:
          snapshots.save_snapshot(r.workdir, epoch, r.predict(state))
      if progress.enabled:
        accuracies = "  ".join(
          f"{os.path.basename(os.path.dirname(r.workdir))} "
          + ("diverged" if i in diverged else f"{rec[-1]['test_accuracy']:.4f}")
          for i, (r, rec) in enumerate(zip(runs, records))
        )
        progress.stream.write(
          f"epoch {epoch + 1}/{cfg.num_epochs} test accuracy: {accuracies}  ({seconds:.1f}s)\n"
        )
      checkpoints.save(
        (epoch + 1) * spe,
        states.checkpoint_items(),
        {
          "step": (epoch + 1) * spe,
          "members": names,
          "records": records,
          "diverged": {str(k): v for k, v in diverged.items()},
        },
      )
  finally:
    checkpoints.close()
  summaries = []
  for i, r in enumerate(runs):
    with open(os.path.join(r.workdir, "metrics.jsonl"), "w") as f:
      f.writelines(json.dumps(rec) + "\n" for rec in records[i])
    if i in diverged:
      d = diverged[i]
      summaries.append(loop.write_diverged_summary(r.workdir, d["step"], d["lr"], d["message"]))
      continue
    summary = loop._summary(records[i], r)
    summary["params_sha256"] = loop._digest(_member(states, i).params)
    summary["population"] = len(runs)
    if r.snapshot_epochs:
      summary["snapshot_ensemble"] = snapshots.ensemble_report(r.workdir, r.ds.test_labels)
    with open(os.path.join(r.workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2)
    summaries.append(summary)
  return summaries


def _train_epoch(
  run: loop.Run, pop, states, schedules, indices, epoch: int, progress: Progress, diverged: dict
):
  """One epoch of the population; members whose loss stops being finite are added to
  `diverged` (index -> step, lr, message) and train on, harmlessly, beside the others."""
  cfg, spe = run.config, run.steps_per_epoch
  perm = data_lib.epoch_permutation(cfg.seed, epoch, len(run.ds.train_labels))[: run.num_train]
  pending, sums = [], {"loss": 0.0, "accuracy": 0.0}
  t0 = time.perf_counter()
  for i in range(spe):
    states, m = pop(states, run.train_batch(perm, i), schedules, indices)
    pending.append((epoch * spe + i, m))
    if i + 1 == spe or (i + 1) % cfg.log_every_steps == 0:
      got = jax.device_get([m for _, m in pending])  # the only host sync: every log_every_steps
      steps, pending = [s for s, _ in pending], []
      for step, m in zip(steps, got):
        for k in np.flatnonzero(~np.isfinite(m["loss"])):
          if int(k) not in diverged:
            lr = float(m["lr"][k])
            diverged[int(k)] = {
              "step": step,
              "lr": lr,
              "message": f"the training loss became {float(m['loss'][k])} at step {step} "
              f"(learning rate {lr:.6g})",
            }
        sums = {key: sums[key] + np.asarray(m[key], np.float64) for key in sums}
      last = got[-1]
      progress.update(
        epoch,
        i + 1,
        {"last_loss": float(np.nanmean(last["loss"])), "last_lr": float(last["lr"][0])},
        time.perf_counter() - t0,
        cfg.batch_size * len(schedules),
      )
  return states, sums, time.perf_counter() - t0
