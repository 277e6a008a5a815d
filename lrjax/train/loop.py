"""The engine: one host loop that trains K >= 1 members sharing their data order.

A member is a built run (`lrjax.train.build.Run`) and the workdir its files go to. The members
of one call share their model, data, batch size and seed (so their initial weights and batches
are the same) and differ only in their per-member leaves, today the schedule. K = 1 is a plain
training run. For K > 1 the members are either trained as one vmapped program (their states
stacked, one batch transfer, K updates a step) or one after another; `lrjax.train.strategy`
chooses.

Everything a run produces lives in its workdir: `config.json` (the resolved config),
`metrics.jsonl` (one record per epoch), `tb/` (TensorBoard events), `snapshots/`, and
`summary.json` when it ends; the group's checkpoints live in the group's folder (the workdir for
K = 1). A folder that holds a checkpoint of the same members resumes from it with the same data
order and schedule position, so an interrupted run ends where an uninterrupted one would, bit for
bit. One NaN policy: a member whose loss stops being finite is recorded as diverged (step, lr)
and, in a population, left out while the others go on; the loop ends when all have diverged.
SIGTERM or SIGINT (a preemption) lets the current step finish, saves a checkpoint at that step
and raises `Preempted`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.train import build, jax_compat, records, snapshots
from lrjax.train.checkpoint import Checkpoints
from lrjax.train.claim import Claim
from lrjax.train.preemption import Preempted, StopSignal
from lrjax.train.progress import Progress


class NonFiniteLossError(RuntimeError):
  """The training loss became NaN or infinite; the last good checkpoint is kept.

  `step` and `lr` are the update whose loss was not finite and its learning rate.
  """

  def __init__(self, message: str, step: int = -1, lr: float = math.nan):
    super().__init__(message)
    self.step, self.lr = step, lr


@dataclasses.dataclass(frozen=True)
class Member:
  run: build.Run
  workdir: str


class Group:
  """K members trained together: their state, step and per-member views."""

  def __init__(self, members: list[Member], vmapped: bool):
    self.members, self.vmapped = members, vmapped
    self.run = r0 = members[0].run
    for m in members[1:]:
      r = m.run
      if (r.steps_per_epoch, r.config.seed, r.model) != (
        r0.steps_per_epoch,
        r0.config.seed,
        r0.model,
      ):
        raise ValueError("a population's runs must share their model, data, batch size and seed")
    self.schedules = tuple(m.run.schedule for m in members)
    self.indices = jnp.arange(len(members), dtype=jnp.int32)

  def __len__(self) -> int:
    return len(self.members)

  def init_state(self):
    state = self.run.init_state()  # the members share their seed: initialise once
    return jax.tree.map(lambda x: jnp.stack([x] * len(self)), state) if self.vmapped else state

  def step(self, state, batch):
    if self.vmapped:
      return self.run.steps.train_members(state, batch, self.schedules, self.indices)
    return self.run.steps.train(state, batch, self.run.schedule)

  def member_state(self, state, i: int):
    return jax.tree.map(lambda x: x[i], state) if self.vmapped else state


def zero_sums(k: int) -> dict[str, Any]:
  return {"loss_sum": [0.0] * k, "correct_sum": [0.0] * k, "seconds": 0.0}


def run_epoch(group: Group, state, epoch: int, first: int, partial: dict, ctx: dict):
  """Steps `first` .. the end of `epoch`; returns (state, partial sums, stopped_at or None).

  Syncs with the device only every `log_every_steps` steps (and to save a checkpoint), where it
  also checks for non-finite losses and for a stop signal.
  """
  run, cfg = group.run, group.run.config
  spe, order = run.steps_per_epoch, run.epoch_order(epoch)
  if first == 0:
    partial = zero_sums(len(group))
  pending, t0 = [], time.perf_counter()
  for i in range(first, spe):
    state, m = group.step(state, run.train_batch(order, i))
    step = epoch * spe + i + 1  # updates done
    pending.append((step - 1, m))
    every = cfg.checkpoint_every_steps
    save_now = every and step % every == 0 and i + 1 < spe
    export_now = step in ctx["exports"] and i + 1 < spe
    sync = save_now or export_now or ctx["stop"].signum
    if i + 1 == spe or sync or (i + 1) % cfg.log_every_steps == 0:
      partial = _absorb(pending, partial, ctx["diverged"])
      pending = []
      ctx["progress"].update(epoch, i + 1, partial, time.perf_counter() - t0, cfg.batch_size)
      if len(ctx["diverged"]) == len(group):
        return state, partial, None
      here = {**partial, "seconds": partial["seconds"] + time.perf_counter() - t0}
      if export_now:
        _export(ctx, step, state, here)
      if (save_now or ctx["stop"].signum) and i + 1 < spe:
        _save(ctx, step, state, here)
        if ctx["stop"].signum:
          return state, here, step
  return state, {**partial, "seconds": partial["seconds"] + time.perf_counter() - t0}, None


def _absorb(pending: list, partial: dict, diverged: dict) -> dict:
  got = jax.device_get([m for _, m in pending])
  loss_sum, correct_sum = list(partial["loss_sum"]), list(partial["correct_sum"])
  for (step, _), m in zip(pending, got):
    losses, accuracies, lrs = (np.atleast_1d(m[k]) for k in ("loss", "accuracy", "lr"))
    for k in range(len(losses)):
      if not np.isfinite(losses[k]) and k not in diverged:
        diverged[k] = {
          "step": int(step),
          "lr": float(lrs[k]),
          "message": f"the training loss became {float(losses[k])} at step {step} "
          f"(learning rate {float(lrs[k]):.6g})",
        }
      loss_sum[k] += float(losses[k])
      correct_sum[k] += float(accuracies[k])
  out = {"loss_sum": loss_sum, "correct_sum": correct_sum, "seconds": partial["seconds"]}
  if got:  # for the progress line: the members' mean loss, over those still finite
    losses = np.atleast_1d(got[-1]["loss"])
    finite = losses[np.isfinite(losses)]
    out["last_loss"] = float(finite.mean()) if finite.size else float(losses[0])
    out["last_lr"] = float(np.atleast_1d(got[-1]["lr"])[0])
  return out


def _save(ctx: dict, step: int, state, partial: dict) -> None:
  ctx["checkpoints"].save(
    step, state.checkpoint_items(), _meta(step, partial, ctx["names"], ctx["diverged"])
  )


def _export(ctx: dict, step: int, state, partial: dict) -> None:
  """Starts each fork of `ctx["exports"][step]` (a run of its own that continues from here):
  this run's checkpoint at `step` and its epoch records so far, in the fork's folder. A fork that
  has started already keeps what it has."""
  for folder in ctx["exports"][step]:
    os.makedirs(folder, exist_ok=True)
    fork = Checkpoints(folder, keep=ctx["keep"])
    try:
      if fork.latest_step() is None:
        records.write_records(folder, ctx["history"][0])
        fork.save(step, state.checkpoint_items(), _meta(step, partial, ["."], {}))
    finally:
      fork.close()


def _meta(step: int, partial: dict, names: list[str], diverged: dict) -> dict:
  return {
    "step": step,
    "partial": {k: partial[k] for k in ("loss_sum", "correct_sum", "seconds")},
    "members": names,
    "diverged": {str(k): v for k, v in diverged.items()},
  }


def _resume(group: Group, group_dir: str, names: list[str], keep: int):
  """(checkpoints, state, step, partial sums, diverged) for a fresh or resumed group."""
  checkpoints, state = Checkpoints(group_dir, keep=keep), group.init_state()
  step, partial, diverged = 0, zero_sums(len(group)), {}
  found = checkpoints.restore_intact(None)
  if found is not None and found[1].get("members", names) != names:
    # Other members (the study changed): these checkpoints do not apply.
    checkpoints.close()
    shutil.rmtree(checkpoints.directory)
    checkpoints = Checkpoints(group_dir, keep=keep)
  elif found is not None:
    items, meta = checkpoints.restore_intact(state.checkpoint_items())
    state = state.replace(**items)
    step, partial = int(meta["step"]), meta["partial"]
    diverged = {int(k): v for k, v in meta.get("diverged", {}).items()}
  return checkpoints, state, step, partial, diverged


def _record(run: build.Run, epoch: int, i: int, partial: dict, seconds: float, ips: float):
  spe = run.steps_per_epoch
  return {
    "epoch": epoch,
    "step": (epoch + 1) * spe,
    "lr": float(run.schedule(epoch * spe)),
    "train_loss": partial["loss_sum"][i] / spe,
    "train_accuracy": partial["correct_sum"][i] / spe,
    "seconds": seconds,
    "images_per_second": ips,
  }


def train_group(
  members: list[Member],
  group_dir: str,
  *,
  vmapped: bool = False,
  quiet: bool = False,
  exports: dict[int, list[str]] | None = None,
) -> tuple[list[dict[str, Any]], Any]:
  """Trains (or resumes) the members together; returns each member's summary and the final
  (stacked, where vmapped) state. `exports` (one member only) maps a step to the folders of
  runs that fork off this one there: each gets this run's checkpoint at that step.

  Raises:
    ClaimedError: another live process is training one of the members' folders.
  """
  with contextlib.ExitStack() as claims:
    if jax.process_count() == 1:  # see `claim.Claim`
      for folder in dict.fromkeys([group_dir, *(m.workdir for m in members)]):
        claims.enter_context(Claim(folder))
    return _train_group(members, group_dir, vmapped, quiet, exports or {})


def _train_group(members: list[Member], group_dir: str, vmapped: bool, quiet: bool, exports):
  group = Group(members, vmapped)
  run, cfg, k = group.run, group.run.config, len(members)
  spe, is_main = run.steps_per_epoch, jax.process_index() == 0
  names = [os.path.relpath(m.workdir, group_dir) for m in members]
  # A population's folder is <root>/_population/<group>: members are labelled from <root> on.
  labels = [
    os.path.relpath(m.workdir, os.path.dirname(os.path.dirname(group_dir))) for m in members
  ]
  checkpoints, state, start_step, partial, diverged = _resume(
    group, group_dir, names, cfg.keep_checkpoints
  )
  history = [records.read_records(m.workdir, start_step // spe) for m in members]
  writers = [None] * k
  if is_main:
    for m, rec in zip(members, history):
      records.write_json(os.path.join(m.workdir, "config.json"), m.run.resolved_config())
      records.write_records(m.workdir, rec)  # drops epochs the resumed run will redo
      if cfg.tensorboard:
        writers[members.index(m)] = _tensorboard(m.workdir)
  progress = Progress(
    cfg.num_epochs, spe, enabled=cfg.progress and is_main and not quiet, start_step=start_step
  )
  ctx = {
    "checkpoints": checkpoints,
    "names": names,
    "diverged": diverged,
    "progress": progress,
    "exports": exports,
    "history": history,
    "keep": cfg.keep_checkpoints,
  }
  try:
    with StopSignal() as stop:
      ctx["stop"] = stop
      for epoch in range(start_step // spe, cfg.num_epochs):
        first = max(start_step - epoch * spe, 0)
        t0 = time.perf_counter()
        state, partial, stopped_at = run_epoch(group, state, epoch, first, partial, ctx)
        if stopped_at is not None:
          raise Preempted(stopped_at, stop.signum)
        if len(diverged) == k:
          break
        ips = (spe - first) * cfg.batch_size * k / max(time.perf_counter() - t0, 1e-9)
        for i, m in enumerate(members):
          if i in diverged:  # its state is not finite: nothing to evaluate
            continue
          # Once per epoch: a schedule-free run recomputes its BatchNorm statistics here.
          member_state = m.run.eval_state(group.member_state(state, i))
          record = _record(m.run, epoch, i, partial, partial["seconds"] / k, ips)
          record.update(m.run.evaluate(member_state, prepared=True))
          history[i].append(record)
          if is_main:
            records.write_records(m.workdir, history[i])
            _to_tensorboard(writers[i], record)
          progress.epoch_done(record, label=labels[i] if k > 1 else None)
          if epoch in m.run.snapshot_epochs:
            probs = m.run.predict(member_state, prepared=True)
            if is_main:
              snapshots.save_snapshot(m.workdir, epoch, probs)
        start_step = (epoch + 1) * spe
        if start_step in exports:
          _export(ctx, start_step, state, zero_sums(k))
        if (epoch + 1) % cfg.checkpoint_every_epochs == 0 or epoch + 1 == cfg.num_epochs:
          _save(ctx, start_step, state, zero_sums(k))
        partial = zero_sums(k)
  finally:
    checkpoints.close()
    for w in writers:
      if w is not None:
        w.close()
  summaries = []
  for i, m in enumerate(members):
    summary = records.summary(history[i], m.run.schedule.to_config(), diverged.get(i))
    if i not in diverged:
      summary["params_sha256"] = records.digest(group.member_state(state, i).params)
      if vmapped and k > 1:
        summary["population"] = k
      if m.run.snapshot_epochs:
        summary["snapshot_ensemble"] = snapshots.ensemble_report(
          m.workdir, m.run.dataset.test_labels
        )
    if is_main:
      records.write_json(os.path.join(m.workdir, "summary.json"), summary)
    summaries.append(summary)
  return summaries, state


def train(
  configs: list[Any],
  workdirs: list[str],
  group_dir: str | None = None,
  *,
  vmapped: bool = False,
  quiet: bool = False,
) -> list[dict[str, Any]]:
  """Trains K >= 1 runs sharing their data order: as one vmapped population in `group_dir`, or
  one after another, each in its own workdir. Returns each run's summary."""
  for w in workdirs:
    os.makedirs(w, exist_ok=True)
  members = [Member(build.build(c), w) for c, w in zip(configs, workdirs)]
  if vmapped and len(members) > 1:
    os.makedirs(group_dir, exist_ok=True)
    return train_group(members, group_dir, vmapped=True, quiet=quiet)[0]
  return [train_group([m], m.workdir, quiet=quiet)[0][0] for m in members]


def train_and_evaluate(config: Any, workdir: str, *, quiet: bool = False) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint) and returns the summary,
  with the final `state`, the `run` and the number of new `compilations` of its train step.

  Raises:
    NonFiniteLossError: the loss became NaN or infinite (its summary says where).
    Preempted: SIGTERM/SIGINT arrived; a checkpoint at the current step is saved.
  """
  os.makedirs(workdir, exist_ok=True)
  run = build.build(config)
  before = jax_compat.compiled_count(run.train_step)
  [summary], state = train_group([Member(run, workdir)], workdir, quiet=quiet)
  if summary.get("diverged"):
    d = summary["diverged"]
    raise NonFiniteLossError(
      f"{d['message']}; the run stopped and its last checkpoint is intact. Lower the learning "
      "rate or check the schedule.",
      step=d["step"],
      lr=d["lr"],
    )
  after = jax_compat.compiled_count(run.train_step)
  compilations = None if before is None or after is None else after - before
  return {**summary, "state": state, "run": run, "compilations": compilations}


def _tensorboard(workdir: str):
  try:
    from tensorboardX import SummaryWriter
  except ImportError:
    return None
  return SummaryWriter(os.path.join(workdir, "tb"))


def _to_tensorboard(writer, record: dict) -> None:
  if writer is None:
    return
  for key, value in record.items():
    if key not in ("epoch", "step"):
      writer.add_scalar(key, value, record["step"])
  writer.flush()
