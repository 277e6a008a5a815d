"""Tests of lrjax.schedules.momentum against PyTorch's recorded momentum (scripts/peers)."""

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from schedule_values import values

import lrjax
from lrjax.schedules.base import INT32_MAX
from lrjax.schedules.momentum import cyclical_momentum, one_cycle_momentum

RECORD = json.loads((Path(__file__).parent / "data" / "peers" / "torch_momentum.json").read_text())
ONE_CYCLE = {c["id"]: c for c in RECORD["cases"] if c["peer"].endswith("OneCycleLR")}
CYCLIC = {c["id"]: c for c in RECORD["cases"] if c["peer"].endswith("CyclicLR")}
FRACTIONAL = "onecycle-max_lr=0.1-total_steps=57-pct_start=0.25"


def _whole(case) -> bool:
  s = case["settings"]
  pt = s["pct_start"] * s["total_steps"]
  return abs(pt - round(pt)) < 1e-9


def _kwargs(s):
  return dict(
    base_momentum=s["base_momentum"],
    max_momentum=s["max_momentum"],
    anneal=s["anneal_strategy"],
    three_phase=s["three_phase"],
  )


def torch_phases(t, s):
  """OneCycleLR's momentum as its source computes it (phase ends p T - 1, 2 p T - 2, T - 1)."""
  total, pct = s["total_steps"], s["pct_start"]
  top, base = s["max_momentum"], s["base_momentum"]
  if s["three_phase"]:
    phases = [(pct * total - 1, top, base), (2 * pct * total - 2, base, top), (total - 1, top, top)]
  else:
    phases = [(pct * total - 1, top, base), (total - 1, base, top)]
  start = 0.0
  for i, (end, a, b) in enumerate(phases):
    if t <= end or i == len(phases) - 1:
      x = (t - start) / (end - start)
      if s["anneal_strategy"] == "cos":
        return b + (a - b) / 2 * (math.cos(math.pi * x) + 1)
      return a + (b - a) * x
    start = end


# ---------------------------------------------------------------- one_cycle_momentum vs PyTorch


def test_every_setting_is_recorded():
  assert len(ONE_CYCLE) == 7 and len(CYCLIC) == 4
  for case in ONE_CYCLE.values():
    assert len(case["momentum"]) == case["settings"]["total_steps"] + 1
  for case in CYCLIC.values():
    s = case["settings"]
    assert len(case["momentum"]) == 3 * (s["step_size_up"] + s["step_size_down"]) + 3


@pytest.mark.parametrize("case_id", sorted(ONE_CYCLE))
def test_torch_is_the_formula_with_every_phase_end_one_step_earlier(case_id):
  # The docstring's description of PyTorch, fractional ends and the step past T included.
  case = ONE_CYCLE[case_id]
  want = [torch_phases(t, case["settings"]) for t in range(len(case["momentum"]))]
  np.testing.assert_allclose(case["momentum"], want, rtol=1e-12)


@pytest.mark.parametrize("case_id", sorted(c for c in ONE_CYCLE if _whole(ONE_CYCLE[c])))
def test_torch_equals_the_schedule_one_step_shorter_when_pct_times_total_is_whole(case_id):
  case = ONE_CYCLE[case_id]
  s = case["settings"]
  total, w = s["total_steps"], round(s["pct_start"] * s["total_steps"])
  shorter = one_cycle_momentum(total - 1, (w - 1) / (total - 1), **_kwargs(s))
  np.testing.assert_allclose(
    values(shorter, np.arange(total)), case["momentum"][:total], rtol=1e-5, atol=0
  )
  # The rate follows the same convention: momentum and rate turn on the same step.
  rate = lrjax.one_cycle(
    s["max_lr"],
    total - 1,
    (w - 1) / (total - 1),
    s["div_factor"],
    s["final_div_factor"],
    s["anneal_strategy"],
    s["three_phase"],
  )
  np.testing.assert_allclose(values(rate, np.arange(total)), case["lr"][:total], rtol=1e-5)


@pytest.mark.parametrize(
  "case_id",
  sorted(
    c for c in ONE_CYCLE if _whole(ONE_CYCLE[c]) and not ONE_CYCLE[c]["settings"]["three_phase"]
  ),
)
def test_torch_anneal_is_the_schedule_one_step_later(case_id):
  case = ONE_CYCLE[case_id]
  s = case["settings"]
  total, w = s["total_steps"], round(s["pct_start"] * s["total_steps"])
  got = values(one_cycle_momentum(total, s["pct_start"], **_kwargs(s)), np.arange(total + 1))
  t = np.arange(w - 1, total)
  np.testing.assert_allclose(got[t + 1], np.asarray(case["momentum"])[t], rtol=1e-5, atol=0)
  # Both turn at their W: PyTorch one step earlier.
  assert int(np.argmin(case["momentum"])) == w - 1 and int(np.argmin(got)) == w


@pytest.mark.parametrize("case_id", sorted(ONE_CYCLE))
def test_at_total_steps_torch_goes_past_its_end_and_lrjax_stays(case_id):
  case = ONE_CYCLE[case_id]
  s = case["settings"]
  total, top = s["total_steps"], np.float32(s["max_momentum"])
  got = values(one_cycle_momentum(total, s["pct_start"], **_kwargs(s)), [total, total + 1])
  np.testing.assert_array_equal(got, [top, top])
  if s["three_phase"]:
    assert case["momentum"][total] == s["max_momentum"]  # its last phase is flat
  else:
    assert case["momentum"][total] != s["max_momentum"]


def test_torch_values_at_total_steps_as_stated():
  default = ONE_CYCLE["onecycle-max_lr=0.1-total_steps=100"]["momentum"][100]
  linear = ONE_CYCLE["onecycle-max_lr=0.1-total_steps=100-anneal_strategy=linear"]["momentum"][100]
  assert round(default, 6) == 0.949950 and round(linear, 6) == 0.951429


def test_fractional_warmup_end_differs_as_stated():
  case = ONE_CYCLE[FRACTIONAL]
  s = case["settings"]
  total, w = 57, 14
  torch = np.asarray(case["momentum"])
  got = values(one_cycle_momentum(total, 0.25), np.arange(total + 1))
  assert got[w] == np.float32(0.85) and int(np.argmin(got)) == w
  assert int(np.argmin(torch)) == w and round(torch.min(), 6) == 0.850076
  assert torch.min() > s["base_momentum"]
  warm = np.abs(torch[:w] - got[:w]).max()
  anneal = np.abs(torch[w - 1 : total] - got[w : total + 1]).max()
  assert (f"{warm:.1e}", f"{anneal:.1e}") == ("5.0e-03", "5.3e-04")
  # The three-phase setting never reaches base_momentum either: no step is on its turn.
  three = ONE_CYCLE[FRACTIONAL + "-three_phase=True-anneal_strategy=linear"]["momentum"]
  assert min(three) > s["base_momentum"]


# ---------------------------------------------------------------- cyclical_momentum vs PyTorch


@pytest.mark.parametrize("case_id", sorted(CYCLIC))
def test_cyclical_momentum_equals_torch_at_every_step(case_id):
  case = CYCLIC[case_id]
  s = case["settings"]
  steps = np.arange(len(case["momentum"]))
  m = cyclical_momentum(
    s["base_momentum"],
    s["max_momentum"],
    s["step_size_up"],
    s["step_size_down"],
    s["mode"],
    s["gamma"],
  )
  np.testing.assert_allclose(values(m, steps), case["momentum"], rtol=1e-5, atol=0)
  rate = lrjax.cyclical(
    s["base_lr"], s["max_lr"], s["step_size_up"], s["step_size_down"], s["mode"], s["gamma"]
  )
  np.testing.assert_allclose(values(rate, steps), case["lr"], rtol=1e-5, atol=0)
  # Lowest where the rate peaks, highest where it is lowest.
  period = s["step_size_up"] + s["step_size_down"]
  assert np.all(
    np.argmin(np.reshape(case["momentum"][: 3 * period], (3, period)), 1) == s["step_size_up"]
  )


# ---------------------------------------------------------------- edges


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize(
  "total, pct, w",
  [(100, 0.3, 30), (10, 0.7, 7), (100, 0.29, 29), (57, 0.25, 14), (1000, 0.999, 999)],
)
def test_one_cycle_momentum_exact_edges(anneal, total, pct, w):
  s = one_cycle_momentum(total, pct, 0.8, 0.9, anneal)
  got = values(s, [0, w, total, total + 1, INT32_MAX])
  np.testing.assert_array_equal(got, np.float32([0.9, 0.8, 0.9, 0.9, 0.9]))
  for far in (2**31, 2**40, 2**62):
    assert float(s(far)) == np.float32(0.9)
  # The turn is the rate's peak.
  curve = values(s, np.arange(total + 1))
  rate = values(lrjax.one_cycle(1.0, total, pct, anneal=anneal), np.arange(total + 1))
  assert int(np.argmin(curve)) == int(np.argmax(rate)) == w
  assert np.all(np.diff(curve[: w + 1]) <= 0) and np.all(np.diff(curve[w:]) >= 0)


@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_momentum_three_phase_edges(anneal):
  s = one_cycle_momentum(100, 0.3, 0.85, 0.95, anneal, three_phase=True)
  got = values(s, np.arange(102))
  assert got[0] == np.float32(0.95) and got[30] == np.float32(0.85)
  np.testing.assert_array_equal(got[60:], np.float32(0.95))
  assert np.all(got[1:60] < np.float32(0.95))
  np.testing.assert_array_equal(values(s, [INT32_MAX]), [np.float32(0.95)])
  assert float(s(2**40)) == np.float32(0.95)
  # Back where it started when the rate is back at its initial value.
  rate = values(lrjax.one_cycle(1.0, 100, 0.3, anneal=anneal, three_phase=True), [60])
  assert rate[0] == np.float32(1.0 / 25.0)


def test_one_cycle_momentum_without_warmup_starts_at_its_turn():
  # p T < 1: W = 0, as one_cycle then starts at its peak.
  s = one_cycle_momentum(3, 0.1, anneal="linear")
  np.testing.assert_allclose(values(s, [0, 1, 3]), [0.85, 0.85 + 0.1 / 3, 0.95], rtol=1e-6)
  assert float(lrjax.one_cycle(1.0, 3, 0.1)(0)) == 1.0
  three = one_cycle_momentum(3, 0.1, three_phase=True)
  np.testing.assert_array_equal(values(three, [0, 1, 3]), np.float32([0.95, 0.95, 0.95]))


def test_one_cycle_momentum_equal_momenta_is_constant():
  s = one_cycle_momentum(20, 0.3, 0.9, 0.9)
  np.testing.assert_array_equal(values(s, np.arange(25)), np.float32(0.9))


@pytest.mark.parametrize(
  "mode, gamma", [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.9)]
)
def test_cyclical_momentum_exact_edges(mode, gamma):
  s = cyclical_momentum(0.8, 0.9, 3, 5, mode, gamma)
  got = values(s, [0, 3, 8, 16, 24])
  if mode == "exp_range":
    np.testing.assert_allclose(got[1], 0.9 - 0.1 * gamma**3, rtol=1e-6)
  else:
    assert got[1] == np.float32(0.8)
  np.testing.assert_array_equal(got[[0, 2, 3, 4]], np.float32(0.9))
  assert np.all(values(s, np.arange(200)) >= np.float32(0.8))
  assert np.all(values(s, np.arange(200)) <= np.float32(0.9))


@pytest.mark.parametrize("up, down", [(3, 5), (25, 25), (2**29 + 3, 2**29 - 1)])
def test_cyclical_momentum_far_steps_keep_their_phase(up, down):
  s = cyclical_momentum(0.85, 0.95, up, down)
  period = up + down
  for step in (INT32_MAX, 2**31, 2**40, 2**40 + 3, 2**62):
    assert float(s(step)) == values(s, [step % period])[0], step
  np.testing.assert_array_equal(values(s, [0, up, period]), np.float32([0.95, 0.85, 0.95]))


@pytest.mark.parametrize("mode, gamma", [("triangular2", 1.0), ("exp_range", 0.999)])
def test_cyclical_momentum_decaying_modes_settle_at_max(mode, gamma):
  s = cyclical_momentum(0.85, 0.95, 3, 4, mode, gamma)
  assert values(s, [INT32_MAX])[0] == np.float32(0.95)
  for step in (2**40, 2**40 + 3, 2**62):
    assert float(s(step)) == np.float32(0.95)


def test_cyclical_momentum_cycles_end_with_the_rate_s():
  assert cyclical_momentum(0.85, 0.95, 5).cycle_ends(23) == lrjax.cyclical(0.1, 1.0, 5).cycle_ends(
    23
  )
  assert one_cycle_momentum(100).cycle_ends(100) == ()


# ---------------------------------------------------------------- contract


def test_no_recompilation_for_new_values():
  f = jax.jit(lambda schedule, t: schedule(t))
  t = jnp.arange(8)
  for total, pct, base, top in [(100, 0.3, 0.85, 0.95), (57, 0.25, 0.8, 0.9), (10, 0.4, 0.0, 1.0)]:
    got = f(one_cycle_momentum(total, pct, base, top), t)
    np.testing.assert_allclose(got, one_cycle_momentum(total, pct, base, top)(t), rtol=1e-6)
  assert f._cache_size() == 1
  for up, down, base, top, gamma in [(5, 8, 0.8, 0.9, 0.98), (4, 4, 0.85, 0.95, 0.5)]:
    got = f(cyclical_momentum(base, top, up, down, "exp_range", gamma), t)
    want = cyclical_momentum(base, top, up, down, "exp_range", gamma)(t)
    np.testing.assert_allclose(got, want, rtol=1e-6)
  assert f._cache_size() == 2
  f(one_cycle_momentum(100, three_phase=True), t)  # a static option is a new program
  assert f._cache_size() == 3


def test_momenta_and_durations_are_leaves_and_vmap():
  leaves = jax.tree.leaves(one_cycle_momentum(100))
  assert [x.dtype for x in leaves] == [np.int32, np.float32, np.float32, np.float32]
  t = jnp.arange(0, 120, 7)
  got = jax.jit(jax.vmap(lambda b: cyclical_momentum(b, 0.95, 5, 3)(t)))(jnp.asarray([0.8, 0.9]))
  for b, row in zip([0.8, 0.9], np.asarray(got)):
    np.testing.assert_allclose(row, values(cyclical_momentum(b, 0.95, 5, 3), t), rtol=1e-6)
  got = jax.jit(jax.vmap(lambda n: one_cycle_momentum(n)(t)))(jnp.asarray([50, 100]))
  for n, row in zip([50, 100], np.asarray(got)):
    np.testing.assert_allclose(row, values(one_cycle_momentum(n), t), rtol=1e-6)


@pytest.mark.parametrize(
  "schedule",
  [
    one_cycle_momentum(57, 0.25, 0.8, 0.9, "linear", True),
    one_cycle_momentum(100),
    cyclical_momentum(0.8, 0.9, 5, 8, "exp_range", 0.98),
    cyclical_momentum(0.85, 0.95, 4, mode="triangular2"),
  ],
)
def test_config_round_trip(schedule):
  config = json.loads(json.dumps(lrjax.to_config(schedule)))
  again = lrjax.from_config(config)
  assert again == schedule and lrjax.to_config(again) == config
  np.testing.assert_array_equal(values(again, np.arange(120)), values(schedule, np.arange(120)))


def test_cyclical_momentum_stores_its_step_size_down():
  s = cyclical_momentum(0.85, 0.95, 4)
  assert int(s.step_size_down) == 4
  assert int(s.replace(step_size_up=6).step_size_down) == 4


def test_drives_sgd_momentum_beside_its_rate():
  total = 20
  opt = optax.inject_hyperparams(optax.sgd)(
    learning_rate=lrjax.one_cycle(0.1, total), momentum=one_cycle_momentum(total)
  )
  params = jnp.zeros(())
  state = opt.init(params)
  update = jax.jit(lambda g, s, p: opt.update(g, s, p))
  for t in range(total + 2):
    _, state = update(jnp.ones(()), state, params)
    # The state holds the values the update with index t used.
    used = state.hyperparams
    assert float(used["momentum"]) == pytest.approx(float(one_cycle_momentum(total)(t)), rel=1e-6)
    assert float(used["learning_rate"]) == pytest.approx(
      float(lrjax.one_cycle(0.1, total)(t)), rel=1e-6
    )


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
  "make, name",
  [
    (lambda: one_cycle_momentum(0), "total_steps"),
    (lambda: one_cycle_momentum(10.5), "total_steps"),
    (lambda: one_cycle_momentum(10, pct_start=0.0), "pct_start"),
    (lambda: one_cycle_momentum(10, pct_start=1.0), "pct_start"),
    (lambda: one_cycle_momentum(10, pct_start=0.5, three_phase=True), "pct_start"),
    (lambda: one_cycle_momentum(10, base_momentum=-0.1), "base_momentum"),
    (lambda: one_cycle_momentum(10, base_momentum=float("nan")), "base_momentum"),
    (lambda: one_cycle_momentum(10, max_momentum=1.5), "max_momentum"),
    (lambda: one_cycle_momentum(10, base_momentum=0.96), "base_momentum"),
    (lambda: one_cycle_momentum(10, anneal="cosine"), "anneal"),
    (lambda: one_cycle_momentum(10, three_phase="yes"), "three_phase"),
    (lambda: cyclical_momentum(0.9, 0.8, 2), "base_momentum"),
    (lambda: cyclical_momentum(-0.5, 0.8, 2), "base_momentum"),
    (lambda: cyclical_momentum(0.8, float("inf"), 2), "max_momentum"),
    (lambda: cyclical_momentum(0.8, 1.01, 2), "max_momentum"),
    (lambda: cyclical_momentum(0.8, 0.9, 0), "step_size_up"),
    (lambda: cyclical_momentum(0.8, 0.9, 2, -3), "step_size_down"),
    (lambda: cyclical_momentum(0.8, 0.9, 2**30, 2**30), "step_size_up"),
    (lambda: cyclical_momentum(0.8, 0.9, 2, mode="triangle"), "mode"),
    (lambda: cyclical_momentum(0.8, 0.9, 2, mode="exp_range", gamma=0.0), "gamma"),
    (lambda: cyclical_momentum(0.8, 0.9, 2, mode="exp_range", gamma=1.5), "gamma"),
  ],
)
def test_validation_errors_name_the_argument(make, name):
  with pytest.raises(ValueError, match=name):
    make()


def test_error_messages_give_the_value():
  with pytest.raises(
    ValueError, match=r"base_momentum must be at most max_momentum = 0\.8, got 0\.9"
  ):
    cyclical_momentum(0.9, 0.8, 2)
  with pytest.raises(ValueError, match=r"max_momentum must be in \[0\.0, 1\.0\], got 1\.5"):
    one_cycle_momentum(10, max_momentum=1.5)
