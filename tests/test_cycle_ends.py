"""Tests of `Schedule.cycle_ends`: the steps at which a cycle of a schedule has ended."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lrjax

REGISTRY = lrjax.registry()


@pytest.mark.parametrize(
  "schedule, total, ends",
  [
    # ceil(T / M) steps per cycle; the run's end closes the last cycle.
    (lrjax.cosine_annealing(0.1, 100, 5), 100, (20, 40, 60, 80, 100)),
    (lrjax.cosine_annealing(0.1, 100, 3), 100, (34, 68, 100)),
    (lrjax.cosine_annealing(0.1, 100, 4), 60, (25, 50, 60)),
    (lrjax.cosine_annealing(0.1, 100, 4), 150, (25, 50, 75, 100, 125, 150)),
    (lrjax.cosine_annealing(0.1, 7, 7), 7, (1, 2, 3, 4, 5, 6, 7)),
    (lrjax.sgdr(0.1, 10), 35, (10, 20, 30, 35)),
    # Cycles of 10, 20, 40: starts 0, 10, 30, 70.
    (lrjax.sgdr(0.1, 10, period_mult=2.0), 100, (10, 30, 70, 100)),
    (lrjax.sgdr(0.1, 10, period_mult=2.0), 70, (10, 30, 70)),
    # Fractional starts S(i) = 4 (1.5**i - 1): 2, 5, 9.5, 16.25; a cycle ends at ceil(S(i + 1)).
    (lrjax.sgdr(0.1, 2, period_mult=1.5), 16, (2, 5, 10, 16)),
    (lrjax.cyclical(0.01, 0.1, 5), 23, (10, 20, 23)),
    (lrjax.repeat(lrjax.linear_decay(0.1, 25), 25), 100, (25, 50, 75, 100)),
    (lrjax.repeat(lrjax.linear_decay(0.1, 30), 25), 60, (25, 50, 60)),
    # A repeat of a cyclic schedule: the child's cycles inside every period.
    (lrjax.repeat(lrjax.sgdr(0.1, 4), 10), 20, (4, 8, 10, 14, 18, 20)),
    # per_epoch: the child's ends count epochs (10 epochs, 4 per cycle).
    (lrjax.per_epoch(lrjax.cosine_annealing(0.1, 10, 3), 10), 100, (40, 80, 100)),
    (lrjax.per_epoch(lrjax.cosine_annealing(0.1, 10, 3), 10), 95, (40, 80, 95)),
    (lrjax.shift(lrjax.cosine_annealing(0.1, 40, 2), 10), 50, (30, 50)),
    (lrjax.shift(lrjax.cosine_annealing(0.1, 40, 2), 60), 50, ()),
    (lrjax.warmup(lrjax.cosine_annealing(0.1, 40, 4), 5), 45, (15, 25, 35, 45)),
    (
      lrjax.join([lrjax.linear_decay(0.1, 10), lrjax.cosine_annealing(0.1, 40, 4)], [10]),
      50,
      (20, 30, 40, 50),
    ),
    # A cyclic piece cut short by the next boundary ends its cycle there.
    (
      lrjax.join([lrjax.cosine_annealing(0.1, 40, 4), lrjax.constant(0.01)], [35]),
      50,
      (10, 20, 30, 35, 50),
    ),
    (0.5 * lrjax.cosine_annealing(0.1, 100, 4), 100, (25, 50, 75, 100)),
    (lrjax.clip(lrjax.sgdr(0.1, 30), 0.01), 100, (30, 60, 90, 100)),
    (lrjax.cosine_annealing(0.1, 100, 4) * lrjax.step_decay(1.0, 0.5, 30), 100, (25, 50, 75, 100)),
    (lrjax.sgdr(0.1, 30) + lrjax.cosine_annealing(0.1, 100, 4), 100, (25, 30, 50, 60, 75, 90, 100)),
    (lrjax.choose([lrjax.constant(0.1), lrjax.sgdr(0.1, 40)], 1), 100, (40, 80, 100)),
    (lrjax.choose([lrjax.constant(0.1), lrjax.sgdr(0.1, 40)], 0), 100, ()),
    (lrjax.cosine_annealing(0.1, 100, 4), 0, ()),
    # WSD-S: a period ends at each decay point, where the decayed model is.
    (lrjax.wsd_s(0.1, 5, [30, 60, 90], 10), 100, (30, 60, 90, 100)),
    (lrjax.wsd_s(0.1, 5, [30, 60, 90], 10), 60, (30, 60)),
  ],
)
def test_cycle_ends(schedule, total, ends):
  assert schedule.cycle_ends(total) == ends


def test_cycle_ends_match_the_restarts():
  # A cycle ends where the next one starts at its peak again.
  for s, total in [
    (lrjax.sgdr(1.0, 3, period_mult=3.0), 400),
    (lrjax.sgdr(1.0, 2, period_mult=1.5), 200),
    (lrjax.cosine_annealing(1.0, 90, 7), 90),
  ]:
    ends = s.cycle_ends(total)
    values = np.asarray(s(np.arange(total + 1)))
    rises = [t for t in range(1, total + 1) if values[t] > values[t - 1]]
    assert list(ends[:-1]) == rises, (s, ends, rises)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_schedule_answers(name):
  entry = REGISTRY[name]
  ends = entry.factory(**entry.example).cycle_ends(100)
  assert isinstance(ends, tuple) and all(isinstance(e, int) for e in ends)
  assert list(ends) == sorted(set(ends)) and all(0 < e <= 100 for e in ends)
  assert not ends or ends[-1] == 100
  cyclic = {"cosine_annealing", "sgdr", "cyclical", "cyclical_momentum", "repeat", "wsd_s"}
  assert bool(ends) == (name in cyclic), (name, ends)


def test_no_cycles_for_decays():
  for s in [lrjax.linear_decay(0.1, 100), lrjax.cosine_decay(0.1, 100), lrjax.constant(0.1)]:
    assert s.cycle_ends(100) == ()


def test_bad_total_steps_and_traced_durations_raise():
  s = lrjax.cosine_annealing(0.1, 100, 4)
  for bad in [-1, 10.0, True, "100"]:
    with pytest.raises(ValueError, match="total_steps"):
      s.cycle_ends(bad)

  def traced(p):
    with pytest.raises(ValueError, match="period"):
      lrjax.repeat(lrjax.linear_decay(0.1, 10), p).cycle_ends(100)
    return p

  jax.jit(traced)(jnp.int32(10))
