"""`config.batch_ramp`: the global batch size in stages of whole epochs, and a run's epochs.

The field maps

* `stages`: `[[start, batch_size], ...]`: from `start` on, every update takes `batch_size`
  examples over all devices. The first stage starts at 0; a later one at `{"epochs": e}` (a
  whole number), `{"samples": n}` or `{"tokens": n}` (with `config.tokens_per_sample`), which must
  be where an epoch ends: a stage holds whole epochs, so that an epoch (one pass over the
  training data, `num_train // batch_size` updates of its stage's batch) has one batch size.
* `lr_rule`: the factor of the schedule's rate at a stage of batch size b: "none" (1),
  "linear" (b / B) or "sqrt" (its square root), B being `config.batch_size`.

`config.batch_size` is the base batch size: the one the schedule's rates refer to, and the one
its durations count steps of. The schedule runs on the samples seen: update t, after S samples,
takes `schedule(S // B) * factor` (`lrjax.train.ramp`), so a warmup of `{"samples": n}` lasts n
samples whatever the ramp, and `{"fraction": 1.0}` ends with the run's last sample. Stages
starting at or after the run's last epoch never run and are left out.

Empty (`{}` or None, the default): every epoch at `config.batch_size`, and the run is the program
it was without the field. `check` refuses a bad setting when the config is parsed, in one line
naming it; `of_run` places the stages once the run's size and devices are known.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from lrjax.config import checks
from lrjax.config.checks import ConfigError
from lrjax.config.values import Fields, frozen, plain

RULES = ("none", "linear", "sqrt")
UNITS = ("epochs", "samples", "tokens")
KEYS = ("stages", "lr_rule")


def check(value: Any, where: str) -> Fields:
  """`config.batch_ramp`, checked as far as the config alone allows: empty Fields where none is
  set. Where a stage starts in samples is checked against the epochs by `of_run`.

  Raises:
    ConfigError: an unknown key, a malformed stage or rule, naming `where.KEY`.
  """
  value = checks.optional_mapping(value, where)
  if not value:
    return Fields()
  for key in value:
    if key not in KEYS:
      raise ConfigError(f"{where}.{key}: a batch ramp has no key {key!r}; it takes {list(KEYS)}")
  for key in KEYS:
    if key not in value:
      raise ConfigError(f"{where} needs {where}.{key} (see lrjax.config.batch_ramp)")
  checks.one_of(RULES)(value["lr_rule"], f"{where}.lr_rule")
  stages = plain(value["stages"])
  want = "a non-empty list of [start, batch_size] pairs"
  if not isinstance(stages, list) or not stages:
    raise checks.fail(f"{where}.stages", stages, want)
  last: dict[str, int] = {}
  for i, stage in enumerate(stages):
    at = f"{where}.stages[{i}]"
    if not isinstance(stage, list) or len(stage) != 2:
      raise checks.fail(at, stage, "a [start, batch_size] pair")
    checks.count(1)(stage[1], f"{at}[1]")
    unit, n = _start(stage[0], f"{at}[0]")
    if i == 0 and n != 0:
      raise checks.fail(f"{at}[0]", stage[0], "0: the first stage starts the run")
    if i > 0 and n <= last.get(unit, 0):
      raise checks.fail(f"{at}[0]", stage[0], "later than the stage before it")
    last[unit] = n
  return frozen(value)


def _start(value: Any, where: str) -> tuple[str, int]:
  """(unit, count) of a stage's start: 0, or `{unit: n}` with `unit` in `UNITS`."""
  if checks.is_int(value) and value == 0:
    return "epochs", 0
  if isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in UNITS:
    unit, n = next(iter(value.items()))
    if checks.is_int(n) and n >= 0:
      return unit, n
  want = f"0 or {{unit: n}} with unit one of {list(UNITS)} and n an integer >= 0"
  raise checks.fail(where, value, want)


def check_together(e: Any, where: str) -> None:
  """The ramp's checks that read other fields: tokens need their size, and what reads epochs
  as equal runs of updates (a plateau's feeding, snapshots) is refused beside it."""
  if not e.batch_ramp:
    return
  for i, stage in enumerate(e.batch_ramp.stages):
    if isinstance(stage[0], Mapping) and "tokens" in stage[0] and e.tokens_per_sample is None:
      raise ConfigError(
        f"{where}.batch_ramp.stages[{i}][0] is in tokens: set {where}.tokens_per_sample"
      )
  for other in ("plateau", "snapshot_ensemble"):
    if getattr(e, other):
      raise ConfigError(f"{where}.batch_ramp cannot be combined with {where}.{other}")


@dataclasses.dataclass(frozen=True)
class Epochs:
  """A run's epochs in stages of one batch size each: where each stage starts (its epoch and
  update) and its updates per epoch. A run without a ramp has one stage.

  Attributes:
    num_train: training examples of each epoch.
    base: the batch size the schedule refers to (`config.batch_size`).
    rule: the rate's rule ("none", "linear", "sqrt").
    first_epochs: the first epoch of each stage (the first 0).
    sizes: each stage's batch size.
  """

  num_train: int
  base: int
  rule: str
  first_epochs: tuple[int, ...]
  sizes: tuple[int, ...]

  @classmethod
  def fixed(cls, num_train: int, batch_size: int) -> Epochs:
    """Every epoch at `batch_size`: a run without a ramp."""
    return cls(num_train, batch_size, "none", (0,), (batch_size,))

  @property
  def ramped(self) -> bool:
    return self.sizes != (self.base,)

  def steps_per_epoch(self, stage: int) -> int:
    return self.num_train // self.sizes[stage]

  @property
  def first_steps(self) -> tuple[int, ...]:
    """The update where each stage starts."""
    out, step = [0], 0
    for k in range(1, len(self.sizes)):
      step += (self.first_epochs[k] - self.first_epochs[k - 1]) * self.steps_per_epoch(k - 1)
      out.append(step)
    return tuple(out)

  def stage(self, epoch: int) -> int:
    return bisect.bisect_right(self.first_epochs, epoch) - 1

  def batch_size(self, epoch: int) -> int:
    return self.sizes[self.stage(epoch)]

  def steps_in(self, epoch: int) -> int:
    """Updates of `epoch`."""
    return self.steps_per_epoch(self.stage(epoch))

  def start(self, epoch: int) -> int:
    """The update where `epoch` starts (the updates before it)."""
    k = self.stage(epoch)
    return self.first_steps[k] + (epoch - self.first_epochs[k]) * self.steps_per_epoch(k)

  def locate(self, step: int) -> tuple[int, int]:
    """(epoch, update within it) of update `step`, 0-based: `divmod(step, steps_per_epoch)`
    without a ramp."""
    k = bisect.bisect_right(self.first_steps, step) - 1
    epoch, i = divmod(step - self.first_steps[k], self.steps_per_epoch(k))
    return self.first_epochs[k] + epoch, i

  def samples_before(self, epoch: int) -> int:
    """Training examples seen before `epoch` starts."""
    return sum(self.batch_size(e) * self.steps_in(e) for e in range(epoch))

  def factor(self, stage: int) -> float:
    """The rule's factor of the rate at `stage`."""
    ratio = self.sizes[stage] / self.base
    return {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[self.rule]

  def to_dict(self) -> dict[str, Any]:
    """What `config.json` records: each stage as its first epoch, first update, batch size and
    rate factor."""
    stages = zip(self.first_epochs, self.first_steps, self.sizes, range(len(self.sizes)))
    return {
      "lr_rule": self.rule,
      "stages": [
        {"epoch": e, "step": s, "batch_size": b, "lr_factor": self.factor(k)}
        for e, s, b, k in stages
      ],
    }


def of_run(e: Any, num_train: int, num_devices: int) -> Epochs:
  """The run's `Epochs`: its ramp's stages placed on its epochs, or one stage without a ramp.

  Args:
    e: the experiment.
    num_train: its training examples per epoch.
    num_devices: the devices its batches are split over.

  Raises:
    ConfigError: a stage whose batch size does not split over the devices or exceeds the
      training examples, or that starts where no epoch ends, naming it.
  """
  if not e.batch_ramp:
    return Epochs.fixed(num_train, e.batch_size)
  where = "config.batch_ramp.stages"
  epochs = Epochs(num_train, e.batch_size, e.batch_ramp.lr_rule, (), ())
  for i, (start, size) in enumerate(e.batch_ramp.stages):
    if size % num_devices or size > num_train:
      raise ConfigError(
        f"{where}[{i}][1] must be divisible by the number of devices ({num_devices}) and at "
        f"most the {num_train} training examples, got {size}"
      )
    at = f"{where}[{i}][0]"
    epoch = _epoch_of(epochs, *_start(plain(start), at), e, at)
    if epochs.first_epochs and epoch <= epochs.first_epochs[-1]:
      raise ConfigError(f"{at} must be later than the stage before it, got {plain(start)}")
    if epoch >= e.num_epochs:  # never runs
      break
    epochs = dataclasses.replace(
      epochs, first_epochs=(*epochs.first_epochs, epoch), sizes=(*epochs.sizes, size)
    )
  return epochs


def _epoch_of(epochs: Epochs, unit: str, n: int, e: Any, where: str) -> int:
  """The epoch at which a stage starting at `n` `unit`s begins, the earlier stages being
  `epochs`'s."""
  if unit == "epochs":
    return n
  samples = n if unit == "samples" else n / e.tokens_per_sample
  epoch, seen = 0, 0
  while seen < samples:
    size = epochs.batch_size(epoch) if epochs.sizes else 1
    seen += size * (epochs.num_train // size)
    epoch += 1
  if seen != samples:
    raise ConfigError(
      f"{where} must be where an epoch ends (a stage holds whole epochs), got {{{unit!r}: {n}}}: "
      f"epoch {epoch} ends after {seen} samples"
    )
  return epoch
