"""`config.batch_ramp`: stages of the batch size in whole epochs, the schedule on the samples seen
and the rule's factor of the rate; without it a run is the program it always was. And
`config.tokens_per_sample`: durations in tokens in configs."""

import json
import math
import os
import signal

import numpy as np
import pytest
from runs import build_run
from test_train import smoke_config

import lrjax
from lrjax.config import experiment as experiment_lib
from lrjax.config.checks import ConfigError
from lrjax.runtime.preemption import Preempted
from lrjax.train import records
from lrjax.train.trainer import Member, Observer, Trainer

# smoke_config: 256 training examples, base batch 32. Epoch 0 in 16 updates of 16, epoch 1 in 8
# of 32 (from 256 samples on), epoch 2 in 4 of 64: 28 updates, 768 samples, 24 steps of 32.
STAGES = [[0, 16], [{"samples": 256}, 32], [{"epochs": 2}, 64]]
SIZES = [16] * 16 + [32] * 8 + [64] * 4
DECAY = {"name": "linear_decay", "init_value": 0.1, "total_steps": {"fraction": 1.0}}
FACTOR = {"none": lambda b: 1.0, "linear": lambda b: b / 32, "sqrt": lambda b: math.sqrt(b / 32)}


def _config(rule="sqrt", **changes):
  ramp = {"stages": STAGES, "lr_rule": rule}
  return smoke_config(num_epochs=3, batch_ramp=ramp, **{"schedule": DECAY, **changes})


class _Recording(Trainer):
  """Records the examples of every batch the step receives."""

  sizes: list

  def train_step(self, state, batch):
    self.sizes.append(int(batch["label"].shape[0]))
    return super().train_step(state, batch)


class _Every(Observer):
  def wants_sync(self, trainer, step):
    return True


def _fit(run, workdir, observers=(), keep=True):
  trainer = _Recording([Member(run, str(workdir))], str(workdir), observers=observers, keep=keep)
  trainer.sizes = []
  return trainer, trainer.fit()


@pytest.mark.parametrize("rule", ["sqrt", "linear", "none"])
def test_a_ramp_trains_with_its_stages_batches_and_its_rule_s_rates(tmp_path, rule):
  run = build_run(_config(rule))
  assert run.total_steps == 28
  seen_lrs = []

  class Lrs(_Every):
    def see(self, trainer, moment):
      seen_lrs.extend(float(m["lr"]) for _, m in moment.fetched)

  trainer, result = _fit(run, tmp_path, [Lrs()], keep=False)
  assert trainer.sizes == SIZES
  assert result.step == 28
  seen = np.concatenate([[0], np.cumsum(SIZES)[:-1]])  # samples before each update
  decay = lrjax.linear_decay(0.1, 24)  # {"fraction": 1.0} of 768 samples, in steps of 32
  want = [float(decay(s // 32)) * FACTOR[rule](b) for s, b in zip(seen, SIZES)]
  np.testing.assert_allclose(seen_lrs, want, rtol=1e-6)
  # An epoch's record: its first update's rate, and where it ends.
  assert [r["step"] for r in result.history[0]] == [16, 24, 28]
  np.testing.assert_allclose([r["lr"] for r in result.history[0]], [want[0], want[16], want[24]])


def test_a_warmup_in_samples_lasts_its_samples_whatever_the_ramp():
  constant = {"name": "constant", "value": 0.1}
  warm = {"name": "warmup", "schedule": constant, "warmup_steps": {"samples": 256}}
  ramped = build_run(_config("none", schedule=warm))
  plain = build_run(smoke_config(num_epochs=3, schedule=warm))
  # 256 samples: 16 updates of 16 with the ramp, 8 of 32 without; both at the peak after them.
  assert float(ramped.schedule(15)) < 0.1 == pytest.approx(float(ramped.schedule(16)))
  assert float(plain.schedule(7)) < 0.1 == pytest.approx(float(plain.schedule(8)))
  assert float(ramped.schedule(14)) == pytest.approx(float(plain.schedule(7)))


def test_a_ramp_is_recorded_and_compiles_once_per_batch_size(tmp_path):
  run = build_run(_config())
  before = run.steps.train._cache_size()
  _fit(run, tmp_path)
  assert run.steps.train._cache_size() - before <= 3  # one program per batch size
  resolved = json.load(open(tmp_path / "config.json"))
  assert resolved["config"]["batch_ramp"]["lr_rule"] == "sqrt"
  assert [s["batch_size"] for s in resolved["batch_ramp"]["stages"]] == [16, 32, 64]
  assert [s["step"] for s in resolved["batch_ramp"]["stages"]] == [0, 16, 24]
  assert resolved["total_steps"] == 28
  assert resolved["schedule"] == lrjax.linear_decay(0.1, 24).to_config()


# "auto" is oneDNN's convolutions where the [train] extra brings them (CI asserts it), else XLA's.
@pytest.mark.parametrize("convolutions", ["auto", "xla"])
@pytest.mark.parametrize("signal_after, saved_at", [(20, 21), (16, 16)])
def test_a_ramped_run_resumes_bitwise_after_sigterm(tmp_path, signal_after, saved_at, convolutions):
  """Stopped inside the second stage, or at the epoch where the batch size changes."""

  def config():
    c = _config()
    c.runtime.convolutions = convolutions
    return c

  _, whole = _fit(build_run(config()), tmp_path / "whole")

  class Sigterm(Observer):
    def wants_sync(self, trainer, step):
      return step == signal_after

    def see(self, trainer, moment):
      if moment.step == signal_after:
        os.kill(os.getpid(), signal.SIGTERM)

  with pytest.raises(Preempted, match=f"at step {saved_at}"):
    _fit(build_run(config()), tmp_path / "cut", [Sigterm()])
  trainer, cut = _fit(build_run(config()), tmp_path / "cut")
  assert trainer.sizes == SIZES[saved_at:]
  digest = lambda result: records.digest(result.train_state.params)
  assert digest(cut) == digest(whole)
  strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "images_per_second")}
  assert [strip(r) for r in cut.history[0]] == [strip(r) for r in whole.history[0]]


@pytest.mark.parametrize("ramp", [None, {}, {"stages": [[0, 32]], "lr_rule": "sqrt"}])
def test_without_a_ramp_a_run_is_the_program_it_was(tmp_path, ramp):
  """No field, an empty one, or one stage at the base batch size: the same bits and records."""
  config = smoke_config(num_epochs=2)
  _, before = _fit(build_run(config), tmp_path / "before")
  changed = smoke_config(num_epochs=2, batch_ramp=ramp)
  run = build_run(changed)
  assert run.schedule == build_run(config).schedule
  _, after = _fit(run, tmp_path / "after")
  assert records.digest(after.train_state.params) == records.digest(before.train_state.params)
  if ramp != {"stages": [[0, 32]], "lr_rule": "sqrt"}:
    assert "batch_ramp" not in experiment_lib.parse(changed).to_dict()
    a, b = (json.load(open(tmp_path / d / "config.json")) for d in ("before", "after"))
    assert a == b


@pytest.mark.parametrize(
  "ramp, message",
  [
    ({"stages": [], "lr_rule": "sqrt"}, r"config.batch_ramp.stages must be a non-empty list"),
    ({"stages": [[0, 16]], "lr_rule": "cubic"}, r"config.batch_ramp.lr_rule must be one of"),
    ({"stages": [[0, 16]]}, r"config.batch_ramp needs config.batch_ramp.lr_rule"),
    ({"stages": [[0, 16]], "lr_rule": "none", "x": 1}, r"config.batch_ramp.x: a batch ramp has"),
    ({"stages": [[0, 0]], "lr_rule": "none"}, r"stages\[0\]\[1\] must be a positive integer"),
    ({"stages": [[1, 16]], "lr_rule": "none"}, r"stages\[0\]\[0\] must be 0 or"),
    ({"stages": [[0, 16], [{"steps": 5}, 32]], "lr_rule": "none"}, r"stages\[1\]\[0\] must be"),
    ({"stages": [[0, 16], [5, 32]], "lr_rule": "none"}, r"stages\[1\]\[0\] must be 0 or"),
    (
      {"stages": [[0, 16], [{"epochs": 1}, 32], [{"epochs": 1}, 64]], "lr_rule": "none"},
      r"stages\[2\]\[0\] must be later than the stage before it",
    ),
    ({"stages": [[0, 16], [{"tokens": 64}, 32]], "lr_rule": "none"}, r"is in tokens: set"),
  ],
)
def test_a_bad_ramp_is_refused_naming_the_field(ramp, message):
  with pytest.raises(ConfigError, match=message):
    experiment_lib.parse(smoke_config(batch_ramp=ramp))


def test_a_ramp_beside_a_plateau_is_refused():
  plateau = {"metric": "validation_loss"}
  config = _config(plateau=plateau, validation_fraction=0.1)
  with pytest.raises(ConfigError, match=r"config.batch_ramp cannot be combined with .*plateau"):
    experiment_lib.parse(config)


@pytest.mark.parametrize(
  "stage, message",
  [
    ([{"samples": 300}, 32], r"stages\[1\]\[0\] must be where an epoch ends .* after 512 samples"),
    ([{"epochs": 1}, 512], r"stages\[1\]\[1\] must be divisible by the number of devices"),
  ],
)
def test_a_stage_off_an_epoch_s_end_or_too_large_is_refused_when_built(stage, message):
  with pytest.raises(ConfigError, match=message):
    build_run(smoke_config(batch_ramp={"stages": [[0, 16], stage], "lr_rule": "none"}))


# ------------------------------------------------------------------------ durations in tokens


def test_a_schedule_in_tokens_is_its_schedule_in_steps():
  in_steps = {"name": "linear_decay", "init_value": 0.1, "total_steps": {"steps": 6}}
  in_tokens = {**in_steps, "total_steps": {"tokens": 6 * 32 * 8}}  # 8 tokens an example
  a = build_run(smoke_config(schedule=in_steps))
  b = build_run(smoke_config(schedule=in_tokens, tokens_per_sample=8))
  assert a.schedule == b.schedule == lrjax.linear_decay(0.1, 6)
  assert b.resolved_config()["config"]["tokens_per_sample"] == 8
  assert "tokens_per_sample" not in a.resolved_config()["config"]


def test_durations_in_tokens_without_their_size_are_refused_naming_the_field():
  in_tokens = {"name": "linear_decay", "init_value": 0.1, "total_steps": {"tokens": 64}}
  with pytest.raises(ConfigError, match=r"config.schedule: schedule.total_steps is in tokens"):
    experiment_lib.parse(smoke_config(schedule=in_tokens))
  momentum = {"momentum": {**in_tokens, "init_value": 0.9}}
  with pytest.raises(ConfigError, match=r"config.optimizer_schedules.momentum: .* in tokens"):
    experiment_lib.parse(smoke_config(optimizer_schedules=momentum))
  with pytest.raises(ConfigError, match=r"config.tokens_per_sample must be a positive integer"):
    experiment_lib.parse(smoke_config(tokens_per_sample=0))
