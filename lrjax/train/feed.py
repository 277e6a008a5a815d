"""Feeding a run's plateau (`config.plateau`) its validation metric, from the loop.

The plateau's metric is evaluated where the loop (`lrjax.train.trainer`) stands after an update
that `due` names: at each epoch's end (the epoch's record holds it already), or every
`every_steps` updates (the validation split is evaluated then). `feed` writes it into the train
state's `PlateauFeed`, marked new, so that the next update reads it; the checkpoint saved there
keeps it, and a resumed run feeds what the uninterrupted one did. Validation data alone: the
test split is never read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from lrjax.train.step import PlateauFeed
from lrjax.transforms.readout import plateau_scale


def due(trainer: Any, step: int) -> bool:
  """Whether the trainer's plateau gets a fresh metric after update `step` (1-based): every
  `every_steps` updates, else at each epoch's end; never in a run that evaluates nothing (the
  range test).

  Args:
    trainer: the `Trainer` (its members share their plateau settings).
    step: updates done.
  """
  plateau = trainer.run.plateau
  if plateau is None or not trainer.evaluate:
    return False
  return step % (plateau.every_steps or trainer.run.steps_per_epoch) == 0


def feed(
  trainer: Any,
  state: Any,
  step: int,
  epoch_records: Mapping[int, Mapping[str, float]],
  diverged: Mapping[int, Any],
) -> Any:
  """`state` with each live member's metric written into its `PlateauFeed`, where `due`.

  Args:
    trainer: the `Trainer`.
    state: its train state after update `step`.
    step: updates done.
    epoch_records: member index -> its record of the epoch that has just ended (where it holds
      the metric, it is read from there); empty inside an epoch.
    diverged: the members whose loss stopped being finite: nothing is fed to them.

  Returns:
    The train state, unchanged where no metric is due.
  """
  if not due(trainer, step):
    return state
  values, fresh = np.zeros(trainer.k, np.float32), np.zeros(trainer.k, bool)
  for i, member in enumerate(trainer.members):
    if i in diverged:
      continue
    run, record = member.run, epoch_records.get(i, {})
    if run.plateau.metric not in record:  # inside an epoch, or a run evaluated at its end alone
      prepared = run.eval_state(trainer.member_state(state, i))
      record = run.evaluate(prepared, prepared=True, splits=("validation",))
    values[i], fresh[i] = record[run.plateau.metric], True
  shape = (trainer.k,) if trainer.vmapped else ()
  fed = PlateauFeed(jnp.asarray(values.reshape(shape)), jnp.asarray(fresh.reshape(shape)))
  return state.replace(plateau=trainer.run.placement.put_replicated(fed))


def epoch_fields(run: Any, member_state: Any, epoch: int) -> dict[str, float]:
  """A plateau run's record of `epoch`: "plateau_scale", the scale after the epoch's last update,
  and "lr", the schedule's rate at the epoch's first update times it; none without a plateau.

  Fed at epoch ends, every update of an epoch applies one scale (decided by its first update,
  which reads the metric), so "lr" is that update's effective rate, as the step's metrics give
  it. Fed every N steps, the scale may change inside an epoch: the step's metrics have each
  update's.

  Args:
    run: the member's run.
    member_state: its train state at the epoch's end.
    epoch: the epoch, 0-based.
  """
  if run.plateau is None:
    return {}
  scale = plateau_scale(member_state.opt_state)
  lr = run.schedule(epoch * run.steps_per_epoch) * scale
  return {"lr": float(lr), "plateau_scale": float(scale)}
