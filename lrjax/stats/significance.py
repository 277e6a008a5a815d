"""The tests of one paired comparison, on the per-seed differences d_i = arm - baseline: the
paired t-test and its interval, the exact sign-flip (permutation) test, two one-sided tests of
equivalence (TOST), and the power of the t-test (from the noncentral t) with the seeds it needs.

Every function takes the differences as given (finite numbers) and treats n < 2 as "cannot
tell": nan, never a warning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

EXACT_UP_TO = 20  # seeds: up to here the sign-flip test enumerates every sign vector
DRAWS = 100_000  # beyond: this many random sign vectors, from a fixed seed (repeatable)


def _checked(differences: Sequence[float]) -> np.ndarray:
  d = np.asarray(differences, dtype=np.float64).reshape(-1)
  if not np.all(np.isfinite(d)):
    raise ValueError(f"differences must be finite, got {list(differences)!r}")
  return d


def t_test(differences: Sequence[float], alpha: float = 0.05) -> tuple[float, float, float]:
  r"""(p, interval low, interval high) of the two-sided paired t-test.

  .. math::
    \bar d \pm t_{1-\alpha/2,\,n-1}\,\frac{s_d}{\sqrt n}, \qquad
    p = 2\,P\!\left(T_{n-1} > \frac{|\bar d|}{s_d/\sqrt n}\right)

  With zero spread the statistic is 0/0 or x/0: p = 1 when every difference is 0 and p = 0
  otherwise, with the interval collapsed to :math:`\bar d`. nan for n < 2.

  Args:
    differences: the per-seed differences.
    alpha: the interval has confidence 1 - alpha.

  Example:
    >>> from lrjax.stats import significance
    >>> p, low, high = significance.t_test([0.01, 0.02, 0.03])
    >>> round(p, 4), round(low, 4), round(high, 4)
    (0.0742, -0.0048, 0.0448)
  """
  d = _checked(differences)
  if not 0 < alpha < 1:
    raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
  n = d.size
  if n < 2:
    return math.nan, math.nan, math.nan
  from scipy import stats as sps  # here: summaries and figures need no scipy

  mean, se = float(d.mean()), float(np.std(d, ddof=1)) / math.sqrt(n)
  if se == 0:
    return (1.0 if mean == 0 else 0.0), mean, mean
  half = float(sps.t.ppf(1 - alpha / 2, n - 1)) * se
  return float(2 * sps.t.sf(abs(mean) / se, n - 1)), mean - half, mean + half


def sign_flip_p(differences: Sequence[float]) -> float:
  r"""The two-sided p-value of the paired sign-flip (permutation) test.

  Under the null hypothesis each difference is as likely to have come with the other sign (the
  two arms exchangeable on each seed), so every one of the :math:`2^n` sign vectors
  :math:`s \in \{-1, 1\}^n` is equally likely:

  .. math:: p = \frac{\#\{s : |\textstyle\sum_i s_i d_i| \ge |\sum_i d_i|\}}{2^n}

  exact, by enumeration, up to `EXACT_UP_TO` seeds; beyond, over `DRAWS` random sign vectors
  from a fixed seed, counting the observed one (`(1 + hits) / (1 + DRAWS)`). It assumes no
  normality; with n seeds it cannot go below :math:`2 / 2^n` (0.0625 with 5). nan for n < 2.

  Args:
    differences: the per-seed differences.

  Example:
    >>> from lrjax.stats import significance
    >>> significance.sign_flip_p([0.01, 0.02, 0.03, 0.04, 0.05])  # 2 of 32 as extreme
    0.0625
  """
  d = _checked(differences)
  n = d.size
  if n < 2:
    return math.nan
  observed = abs(float(d.sum()))
  tolerance = 1e-12 * max(1.0, float(np.abs(d).sum()))  # sums equal but for rounding count
  if n <= EXACT_UP_TO:
    hits = 0
    for chunk in _sign_chunks(n):
      hits += int(np.count_nonzero(np.abs(chunk @ d) >= observed - tolerance))
    return hits / 2**n
  signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(DRAWS, n))
  hits = int(np.count_nonzero(np.abs(signs @ d) >= observed - tolerance))
  return (1 + hits) / (1 + DRAWS)


def _sign_chunks(n: int, rows: int = 1 << 16):
  """Every sign vector of length n, in chunks of at most `rows` (memory stays bounded)."""
  bits = np.arange(n)
  for start in range(0, 2**n, rows):
    codes = np.arange(start, min(start + rows, 2**n))[:, None]
    yield np.where((codes >> bits) & 1, -1.0, 1.0)


def tost_p(differences: Sequence[float], margin: float) -> float:
  r"""The p-value of two one-sided t-tests of equivalence within `margin` (TOST).

  The null hypothesis is that the true difference lies outside :math:`(-m, m)`; it is rejected,
  and the arms called equivalent within m, when both one-sided tests reject:

  .. math::
    p = \max\Bigl(P\bigl(T_{n-1} > \tfrac{\bar d + m}{s_d/\sqrt n}\bigr),\;
    P\bigl(T_{n-1} < \tfrac{\bar d - m}{s_d/\sqrt n}\bigr)\Bigr)

  With zero spread p is 0 when :math:`|\bar d| < m` and 1 otherwise. nan for n < 2.

  Args:
    differences: the per-seed differences.
    margin: m, positive, in the metric's units (0.005: half a point of accuracy).

  Example:
    >>> from lrjax.stats import significance
    >>> round(significance.tost_p([0.001, -0.002, 0.0, 0.001, -0.001], 0.005), 5)
    0.00059
  """
  d = _checked(differences)
  if not (isinstance(margin, int | float) and margin > 0 and math.isfinite(margin)):
    raise ValueError(f"margin must be a positive number, got {margin!r}")
  n = d.size
  if n < 2:
    return math.nan
  mean, se = float(d.mean()), float(np.std(d, ddof=1)) / math.sqrt(n)
  if se == 0:
    return 0.0 if abs(mean) < margin else 1.0
  from scipy import stats as sps

  lower = float(sps.t.sf((mean + margin) / se, n - 1))
  upper = float(sps.t.cdf((mean - margin) / se, n - 1))
  return max(lower, upper)


def power(n: int, delta: float, std_difference: float, alpha: float = 0.05) -> float:
  r"""The power of the two-sided paired t-test at level alpha to detect a true difference
  `delta`, with n seeds and a spread `std_difference` of the differences: from the noncentral
  t distribution with n - 1 degrees of freedom and noncentrality
  :math:`\lambda = \delta \sqrt n / s_d`,

  .. math::
    \text{power} = P(T'_{n-1,\lambda} > t_{1-\alpha/2}) + P(T'_{n-1,\lambda} < -t_{1-\alpha/2})

  Args:
    n: seeds, at least 2.
    delta: the true difference, positive.
    std_difference: :math:`s_d`, positive (0: power 1).
    alpha: the test level.

  Example:
    >>> from lrjax.stats import significance
    >>> round(significance.power(5, 0.01, 0.01), 3)  # 5 seeds, a difference as large as the spread
    0.401
  """
  if isinstance(n, bool) or not isinstance(n, int) or n < 2:
    raise ValueError(f"n must be an integer >= 2, got {n!r}")
  if not delta > 0:
    raise ValueError(f"delta must be positive, got {delta!r}")
  if not std_difference >= 0:
    raise ValueError(f"std_difference must be >= 0, got {std_difference!r}")
  if not 0 < alpha < 1:
    raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
  if std_difference == 0:
    return 1.0
  from scipy import stats as sps

  df, ncp = n - 1, delta * math.sqrt(n) / std_difference
  crit = float(sps.t.ppf(1 - alpha / 2, df))
  return float(sps.nct.sf(crit, df, ncp) + sps.nct.cdf(-crit, df, ncp))


def seeds_for(
  std_difference: float, delta: float, alpha: float = 0.05, target: float = 0.8
) -> int | float:
  r"""The fewest seeds whose paired t-test reaches power `target` for a true difference `delta`
  at the observed spread: the smallest n >= 2 with `power(n, delta, std_difference, alpha)` >=
  target (the noncentral t, not the normal approximation, which undercounts small n). nan where
  the spread is unknown (fewer than 2 seeds).

  Args:
    std_difference: :math:`s_d`, or nan when unknown.
    delta: the difference to detect, positive, in the metric's units.
    alpha: the test level.
    target: the power wanted, in (0, 1).

  Example:
    >>> from lrjax.stats import significance
    >>> significance.seeds_for(0.01, 0.01)  # a 1-point difference at a 1-point spread
    10
  """
  if not delta > 0:
    raise ValueError(f"delta must be positive, got {delta!r}")
  if not (0 < alpha < 1 and 0 < target < 1):
    raise ValueError(f"alpha and target must be in (0, 1), got {alpha!r} and {target!r}")
  if not math.isfinite(std_difference):
    return math.nan
  low = 2
  if power(low, delta, std_difference, alpha) >= target:
    return low
  high = 4
  while power(high, delta, std_difference, alpha) < target:
    low, high = high, high * 2
  while high - low > 1:  # power grows with n: the first n that reaches the target
    mid = (low + high) // 2
    low, high = (mid, high) if power(mid, delta, std_difference, alpha) < target else (low, mid)
  return high
