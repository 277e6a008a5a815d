"""Summaries over seeds and paired comparisons, checked against hand-computed numbers."""

import math
import warnings

import numpy as np
import pytest
from compare_fixtures import make_results, with_metric
from scipy import stats as sps

from lrjax import stats

# df = 2: t_{0.975} and the closed form P(T > t) = (1 - t / sqrt(t^2 + 2)) / 2.
T975_DF2 = 4.302652729911275


def _sf_df2(t):
  return 0.5 * (1 - t / math.sqrt(t * t + 2))


def _two(accuracy_a, accuracy_b, metric="final_test_accuracy", **kwargs):
  r = make_results(2, len(accuracy_a), 4, **kwargs)
  return with_metric(r, metric, {"constant": accuracy_a, "time_based": accuracy_b})


def test_summarize_mean_and_sample_std():
  r = with_metric(make_results(2, 3, 4), "final_test_accuracy", {"constant": [0.80, 0.82, 0.84]})
  cell = stats.summarize(r)["constant"]["final_test_accuracy"]
  assert cell["n"] == 3 and cell["seeds"] == [0, 1, 2]
  assert cell["mean"] == pytest.approx(0.82)
  assert cell["std"] == pytest.approx(0.02)  # ddof=1: sqrt((0.02^2 + 0 + 0.02^2) / 2)
  assert set(stats.summarize(r)["constant"]) == set(stats.METRICS)


def test_paired_hand_computed_not_significant():
  base = [0.80, 0.80, 0.80]
  row = stats.paired_comparison(_two(base, [0.81, 0.82, 0.83]))[0]
  assert row["arm"] == "time_based" and row["baseline"] == "constant"
  np.testing.assert_allclose(row["differences"], [0.01, 0.02, 0.03], atol=1e-12)
  se = 0.01 / math.sqrt(3)
  assert row["mean_difference"] == pytest.approx(0.02)
  assert row["ci_low"] == pytest.approx(0.02 - T975_DF2 * se)
  assert row["ci_high"] == pytest.approx(0.02 + T975_DF2 * se)
  assert row["p_value"] == pytest.approx(2 * _sf_df2(0.02 / se))  # 0.0742
  assert row["n"] == 3
  assert row["verdict"] == "undecided"


@pytest.mark.parametrize(
  "metric, delta, verdict",
  [
    ("final_test_accuracy", +1, "better"),
    ("final_test_accuracy", -1, "worse"),
    ("final_test_loss", +1, "worse"),  # a higher loss is worse
    ("final_test_loss", -1, "better"),
  ],
)
def test_paired_verdict_follows_direction(metric, delta, verdict):
  diffs = np.array([0.02, 0.03, 0.04]) * delta
  base = [0.5, 0.5, 0.5]
  row = stats.paired_comparison(_two(base, list(0.5 + diffs), metric), metric=metric)[0]
  se = 0.01 / math.sqrt(3)
  assert row["p_value"] == pytest.approx(2 * _sf_df2(0.03 / se))  # 0.0351
  assert row["verdict"] == verdict


def test_agrees_with_scipy_ttest_rel():
  rng = np.random.default_rng(0)
  a, b = rng.normal(0.8, 0.01, 5), rng.normal(0.81, 0.01, 5)
  row = stats.paired_comparison(_two(list(a), list(b)))[0]
  ref = sps.ttest_rel(b, a)
  assert row["p_value"] == pytest.approx(ref.pvalue)
  ci = ref.confidence_interval(0.95)
  assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_one_seed():
  r = _two([0.8], [0.9])
  cell = stats.summarize(r)["constant"]["final_test_accuracy"]
  assert cell["n"] == 1 and cell["mean"] == 0.8 and math.isnan(cell["std"])
  row = stats.paired_comparison(r)[0]
  assert row["n"] == 1 and row["mean_difference"] == pytest.approx(0.1)
  assert math.isnan(row["p_value"]) and math.isnan(row["ci_low"])
  assert row["verdict"] == stats.NEEDS_SEEDS


def test_missing_runs_pair_over_shared_seeds():
  r = make_results(3, 4, 4, missing=(("constant", 1), ("time_based", 2), ("drop_based", 0)))
  summary = stats.summarize(r)
  assert summary["constant"]["final_test_accuracy"]["seeds"] == [0, 2, 3]
  assert summary["time_based"]["seconds"]["n"] == 3
  rows = {row["arm"]: row for row in stats.paired_comparison(r)}
  assert rows["time_based"]["seeds"] == [0, 3] and rows["time_based"]["n"] == 2
  assert rows["drop_based"]["seeds"] == [2, 3]


def test_schedule_without_runs():
  r = make_results(3, 2, 4, missing=(("linear", 0),))
  r["arms"].append("linear")
  cell = stats.summarize(r)["linear"]["final_test_loss"]
  assert cell["n"] == 0 and math.isnan(cell["mean"]) and math.isnan(cell["std"])
  row = stats.paired_comparison(r)[-1]
  assert row["arm"] == "linear" and row["n"] == 0 and row["verdict"] == stats.NEEDS_SEEDS


def test_missing_baseline_runs_leave_nothing_to_pair():
  r = make_results(2, 3, 4)
  r["runs"] = [run for run in r["runs"] if run["arm"] != "constant"]
  assert stats.paired_comparison(r)[0]["verdict"] == stats.NEEDS_SEEDS


def test_identical_values_have_p_one_and_no_warning():
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    row = stats.paired_comparison(_two([0.8, 0.85, 0.9], [0.8, 0.85, 0.9]))[0]
    summary = stats.summarize(_two([0.8, 0.8], [0.8, 0.8]))
  assert row["p_value"] == 1.0 and row["ci_low"] == row["ci_high"] == 0.0
  assert row["verdict"] == "equivalent"  # identical on every seed: within any margin
  assert summary["constant"]["final_test_accuracy"]["std"] == 0.0


def test_constant_nonzero_difference_is_significant():
  out = stats.paired_stats([0.5, 0.5, 0.5])
  assert out["p_value"] == 0.0 and out["ci_low"] == out["ci_high"] == 0.5
  assert out["verdict"] == "better"
  assert stats.paired_stats([0.5, 0.5], higher_is_better=False)["verdict"] == "worse"


def test_missing_or_non_finite_metrics_count_as_missing():
  r = _two([0.8, None, float("nan")], [0.81, 0.82, 0.83])
  assert stats.summarize(r)["constant"]["final_test_accuracy"]["n"] == 1
  assert stats.paired_comparison(r)[0]["n"] == 1


def test_explicit_baseline_and_nested_metric():
  r = make_results(3, 2, 4, snapshots=True)
  rows = stats.paired_comparison(r, baseline="drop_based", metric="best_test_accuracy")
  assert [row["arm"] for row in rows] == ["constant", "time_based"]
  run = {"snapshot_ensemble": {"ensemble_accuracy": 0.9}}
  assert stats.metric_value(run, "snapshot_ensemble.ensemble_accuracy") == 0.9
  assert stats.metric_value({"snapshot_ensemble": None}, "snapshot_ensemble.x") is None


def test_direction_inferred_from_name():
  assert stats.higher_is_better_for("final_test_accuracy")
  assert not stats.higher_is_better_for("final_test_loss")
  assert not stats.higher_is_better_for("seconds")


@pytest.mark.parametrize(
  "call, argument",
  [
    (lambda: stats.summarize({"runs": None}), "results"),
    (lambda: stats.paired_comparison(make_results(2, 2, 3), baseline="nope"), "baseline"),
    (lambda: stats.paired_stats([0.1, 0.2], alpha=1.5), "alpha"),
    (lambda: stats.paired_stats([0.1, float("inf")]), "differences"),
    (lambda: stats.paired_comparison({"arms": [], "runs": []}), "arm"),
  ],
)
def test_bad_input(call, argument):
  with pytest.raises(ValueError, match=argument):
    call()


@pytest.mark.parametrize(
  "raw, adjusted",
  [
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(1*0.04, 0.06)
    ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
    ([0.02, math.nan, 0.5], [0.04, math.nan, 0.5]),  # nan is no test: m = 2
    ([0.6, 0.7], [1.0, 1.0]),  # capped at 1
    ([0.01, 0.01], [0.02, 0.02]),  # ties
    ([0.03], [0.03]),
    ([], []),
  ],
)
def test_holm_hand_computed(raw, adjusted):
  np.testing.assert_allclose(stats.holm(raw), adjusted, rtol=1e-12)


@pytest.mark.parametrize("bad", [[1.5], [-0.1, 0.2]])
def test_holm_rejects_p_outside_unit_interval(bad):
  with pytest.raises(ValueError, match="p_values"):
    stats.holm(bad)


def test_verdict_reads_the_holm_adjusted_p_value():
  # Three schedules, each 0.02, 0.03, 0.04 above the baseline: raw p = 0.0351 each, significant
  # alone; Holm: 3 * 0.0351 = 0.105 for the smallest, and the others may not be lower.
  base = [0.5, 0.5, 0.5]
  up = [0.52, 0.53, 0.54]
  r = with_metric(
    make_results(4, 3, 4),
    "final_test_accuracy",
    {"constant": base, "time_based": up, "drop_based": up, "linear": up},
  )
  se = 0.01 / math.sqrt(3)
  rows = stats.paired_comparison(r)
  assert [row["arm"] for row in rows] == ["time_based", "drop_based", "linear"]
  for row in rows:
    assert row["p_value"] == pytest.approx(2 * _sf_df2(0.03 / se))
    assert row["p_adjusted"] == pytest.approx(3 * row["p_value"])
    assert row["verdict"] == "undecided"
  for row in stats.paired_comparison(r, adjust=None):
    assert row["p_adjusted"] == row["p_value"] and row["verdict"] == "better"
  with pytest.raises(ValueError, match="adjust"):
    stats.paired_comparison(r, adjust="bonferroni")


# ------------------------------------------------------------ the tests against references


@pytest.mark.parametrize("n", [2, 3, 5, 8, 10])
def test_the_sign_flip_p_is_exact_against_enumeration(n):
  import itertools

  rng = np.random.default_rng(n)
  d = np.round(rng.normal(0.01, 0.02, n), 4)  # rounded: ties among the sums are likely
  observed = abs(d.sum())
  sums = [abs(np.dot(s, d)) for s in itertools.product((1, -1), repeat=n)]
  expected = sum(v >= observed - 1e-12 for v in sums) / 2**n
  assert stats.sign_flip_p(d) == expected
  assert stats.sign_flip_p(np.abs(d) + 0.001) == 2 / 2**n  # all one sign: the two extremes


def test_the_sign_flip_p_beyond_enumeration_is_repeatable_and_close():
  d = np.random.default_rng(0).normal(0.0, 1.0, 24)
  first, second = stats.sign_flip_p(d), stats.sign_flip_p(d)
  assert first == second and 0 < first <= 1
  assert abs(first - stats.t_test(d)[0]) < 0.05  # the t-test's p, near normality


def test_power_from_the_noncentral_t_matches_simulation():
  # Simulated paired t-tests at n = 6, delta = sd: the rejection rate is the power.
  rng = np.random.default_rng(0)
  n, delta, sd, trials = 6, 0.01, 0.01, 20_000
  d = rng.normal(delta, sd, size=(trials, n))
  p = sps.ttest_1samp(d, 0.0, axis=1).pvalue
  simulated = float(np.mean(p < 0.05))
  assert stats.power(n, delta, sd) == pytest.approx(simulated, abs=0.015)
  df, ncp = n - 1, delta * math.sqrt(n) / sd  # and the noncentral t's own terms
  crit = sps.t.ppf(0.975, df)
  assert stats.power(n, delta, sd) == pytest.approx(
    sps.nct.sf(crit, df, ncp) + sps.nct.cdf(-crit, df, ncp)
  )


@pytest.mark.parametrize("sd", [0.002, 0.005, 0.01, 0.02])
def test_seeds_for_is_the_fewest_that_reach_the_power(sd):
  n = stats.seeds_for(sd, 0.01)
  assert stats.power(n, 0.01, sd) >= 0.8
  assert n == 2 or stats.power(n - 1, 0.01, sd) < 0.8
  # The normal approximation undercounts small n: a 1-point difference at a 1-point spread
  # needs 10 seeds (the approximation said 8).
  if sd == 0.01:
    assert n == 10


def test_tost_against_a_hand_computed_case():
  d = np.array([0.001, -0.002, 0.0, 0.001, -0.001])
  mean, se = d.mean(), d.std(ddof=1) / math.sqrt(5)
  by_hand = max(sps.t.sf((mean + 0.005) / se, 4), sps.t.cdf((mean - 0.005) / se, 4))
  assert stats.tost_p(d, 0.005) == pytest.approx(by_hand)
  assert by_hand < 0.001  # here: equivalent within half a point
  assert stats.tost_p(d + 0.01, 0.005) > 0.5  # a point away: not within half a point
  with pytest.raises(ValueError, match="margin must be a positive number, got 0"):
    stats.tost_p(d, 0)


def test_equivalent_is_a_verdict_within_the_margin():
  base = [0.80, 0.81, 0.82, 0.83, 0.84]
  close = [b + e for b, e in zip(base, [0.001, -0.002, 0.0, 0.001, -0.001])]
  row = stats.paired_comparison(_two(base, close))[0]
  assert row["verdict"] == "equivalent" and row["margin"] == 0.005
  assert stats.paired_comparison(_two(base, close), margin=None)[0]["verdict"] == "undecided"
  loss = stats.paired_comparison(_two(base, close), metric="final_test_loss")
  assert loss[0]["margin"] is None  # a loss has no default margin


def test_the_declared_test_decides_the_verdict():
  base = [0.5] * 5
  up = [0.52, 0.53, 0.54, 0.55, 0.56]
  by_t = stats.paired_comparison(_two(base, up))[0]
  by_permutation = stats.paired_comparison(_two(base, up), test="permutation")[0]
  assert by_t["verdict"] == "better"  # t: p = 0.0016
  assert by_permutation["p_permutation"] == 0.0625  # 2 of 32: it cannot go lower with 5 seeds
  assert by_permutation["verdict"] == "undecided"
  with pytest.raises(ValueError, match="test must be one of"):
    stats.paired_comparison(_two(base, up), test="wilcoxon")


@pytest.mark.parametrize("seed", range(40))
def test_no_undecided_verdict_has_an_interval_that_excludes_zero(seed):
  rng = np.random.default_rng(seed)
  k, n = int(rng.integers(2, 6)), int(rng.integers(2, 7))
  r = make_results(k + 1, n, 4)
  base = rng.normal(0.8, 0.02, n)
  table = {"constant": list(base)}
  names = [a for a in r["arms"] if a != "constant"]
  for name in names:
    table[name] = list(base + rng.normal(rng.normal(0, 0.01), 0.01, n))
  for row in stats.paired_comparison(with_metric(r, "final_test_accuracy", table)):
    excludes_zero = row["ci_low_adjusted"] > 0 or row["ci_high_adjusted"] < 0
    assert not (excludes_zero and row["verdict"] in ("undecided", "equivalent")), row
