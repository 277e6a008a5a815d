r"""The schedules of a run whose batch size ramps (`config.batch_ramp`), on the samples seen.

A run's schedules are resolved in steps of its base batch size B (`config.batch_size`) over the
samples the run sees (`samples_length`), and `on_samples` wraps each so that the train step,
which writes `schedule(step)` into the optimizer state, writes the value at the samples seen
instead: update t of stage k (started at update F_k after S_k samples, batch b_k, rate factor
f_k) takes

.. math:: \eta(t) = f_k \, s\big(\lfloor (S_k + (t - F_k)\, b_k) / B \rfloor\big)

where s is the schedule in steps of B. So a duration in samples lasts those samples whatever the
ramp, and with B = b_k a stage is the schedule as it was. A run without a ramp keeps its
schedules as they are: the same program.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.config.batch_ramp import Epochs
from lrjax.schedules.base import Schedule, schedule_class, static_field


@schedule_class
class OnSamples(Schedule):
  """`schedule` at the samples seen before update t, in steps of `base`, times the stage's
  factor (see the module docstring); each array holds one value per stage."""

  schedule: Schedule
  first_steps: Any  # int32: the update where each stage starts
  base_steps: Any  # int32: samples seen at its start // base
  remainders: Any  # int32: samples seen at its start % base (keeps the products in int32)
  sizes: Any  # int32: its batch size
  factors: Any  # float32: its rate factor (1 for a hyperparameter other than the rate)
  base: int = static_field()

  def _value(self, t: jax.Array) -> jax.Array:
    k = jnp.sum(t[..., None] >= self.first_steps, axis=-1) - 1
    seen = self.remainders[k] + (t - self.first_steps[k]) * self.sizes[k]
    return self.schedule(self.base_steps[k] + seen // self.base) * self.factors[k]

  def to_config(self) -> dict[str, Any]:
    """The schedule's config in steps of the base batch size: a run records its ramp beside it
    (`Epochs.to_dict`)."""
    return self.schedule.to_config()


def samples_length(run_length: Any, epochs: Epochs, num_epochs: int) -> Any:
  """`run_length` (a `lrjax.train.build.Length`) with its steps in steps of the base batch size
  over the samples the run sees: what its schedules' durations resolve against."""
  if not epochs.ramped:
    return run_length
  total = epochs.samples_before(num_epochs) // epochs.base
  return dataclasses.replace(run_length, total_steps=total)


def on_samples(schedule: Schedule, epochs: Epochs, *, rate: bool = True) -> Schedule:
  """`schedule` (in steps of the base batch size) evaluated at the samples seen, times the
  rule's factor where it is the `rate`; `schedule` itself without a ramp."""
  if not epochs.ramped:
    return schedule
  stages = range(len(epochs.sizes))
  seen = [epochs.samples_before(e) for e in epochs.first_epochs]
  return OnSamples(
    schedule=schedule,
    first_steps=np.asarray(epochs.first_steps, np.int32),
    base_steps=np.asarray([s // epochs.base for s in seen], np.int32),
    remainders=np.asarray([s % epochs.base for s in seen], np.int32),
    sizes=np.asarray(epochs.sizes, np.int32),
    factors=np.asarray([epochs.factor(k) if rate else 1.0 for k in stages], np.float32),
    base=epochs.base,
  )
