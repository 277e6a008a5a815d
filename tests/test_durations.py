"""Durations in samples and tokens give the same schedule as the equivalent steps."""

import pytest

import lrjax
from lrjax.config.durations import resolve_schedule, to_steps

WSD = {
  "name": "warmup_stable_decay",
  "peak_value": 0.1,
  "warmup_steps": {"samples": 2560},
  "decay_steps": {"tokens": 1_048_576},
  "total_steps": {"steps": 1000},
}


def test_samples_and_tokens_are_the_equivalent_steps():
  # 128 examples of 512 tokens per update: 2560 samples = 20 steps, 2**20 tokens = 16 steps.
  s = resolve_schedule(WSD, 50, 1000, samples_per_step=128, tokens_per_sample=512)
  assert s == lrjax.warmup_stable_decay(0.1, warmup_steps=20, decay_steps=16, total_steps=1000)


@pytest.mark.parametrize(
  "value, expected",
  [({"samples": 0}, 0), ({"samples": 1}, 1), ({"samples": 191}, 1), ({"samples": 193}, 2)],
)
def test_samples_round_to_the_nearest_step_and_last_at_least_one(value, expected):
  assert to_steps(value, 10, 100, samples_per_step=128) == expected


def test_a_batch_size_change_keeps_the_schedule_in_samples():
  cfg = {"name": "linear_decay", "init_value": 0.1, "total_steps": {"samples": 12_800}}
  small = resolve_schedule(cfg, 10, 100, samples_per_step=64)
  large = resolve_schedule(cfg, 10, 100, samples_per_step=256)
  assert int(small.total_steps) == 200 and int(large.total_steps) == 50
  for t in (0, 100, 200):
    assert float(small(t)) == float(large(t * 50 // 200))


def test_units_without_a_size_are_refused_naming_the_field():
  in_samples = {"name": "linear_decay", "init_value": 0.1, "total_steps": {"samples": 8}}
  with pytest.raises(ValueError, match=r"schedule.total_steps is in samples, but this run's"):
    resolve_schedule(in_samples, 1, 1)
  tokens = r"schedule.decay_steps is in tokens, but .* not known: set config.tokens_per_sample"
  with pytest.raises(ValueError, match=tokens):
    resolve_schedule(WSD, 50, 1000, samples_per_step=128)
  with pytest.raises(ValueError, match=r"must be a non-negative number of tokens, got -1"):
    to_steps({"tokens": -1}, 1, 1, samples_per_step=1, tokens_per_sample=1)


def test_a_run_s_schedule_in_samples_is_its_schedule_in_steps():
  from runs import build_run
  from test_train import smoke_config

  in_steps = {"name": "linear_decay", "init_value": 0.1, "total_steps": {"steps": 6}}
  in_samples = {**in_steps, "total_steps": {"samples": 6 * 32}}  # smoke_config's batch of 32
  a = build_run(smoke_config(schedule=in_steps))
  b = build_run(smoke_config(schedule=in_samples))
  assert b.experiment.batch_size == 32
  assert a.schedule == b.schedule == lrjax.linear_decay(0.1, 6)
