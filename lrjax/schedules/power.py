"""The Power scheduler: a learning rate that falls as a power law of the tokens seen.

`t` is the 0-based optimizer update; the schedule's durations and its law count tokens,
`n = t * tokens_per_step`, computed in float32. The registered example has a horizon of 100
steps so that the gallery plots line up.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, schedule_class, static_field
from lrjax.schedules.config import register
from lrjax.schedules.formulas import DECAY_SHAPES, linear_warmup, shaped_decay

POWER_DECAY_SHAPES = ("exponential", *DECAY_SHAPES)


@schedule_class
class PowerScheduler(Schedule):
  peak_value: Any
  tokens_per_step: Any
  a: Any
  b: Any
  beta: Any
  warmup_tokens: Any
  total_tokens: Any
  decay_tokens: Any
  end_value: Any
  init_value: Any
  decay_shape: str = static_field()

  def _law(self, n):
    """min(peak, beta a n^b), and the peak at n = 0, where n^b is infinite."""
    pos = n > 0
    law = self.beta * self.a * jnp.power(jnp.where(pos, n, 1.0), self.b)
    return jnp.where(pos, jnp.minimum(self.peak_value, law), self.peak_value)

  def _value(self, t, t_float=None):
    # Tokens in float32: t * tokens_per_step overflows int32 past 2**31 tokens.
    steps = t.astype(jnp.float32) if t_float is None else t_float
    n = steps * self.tokens_per_step
    after = self._law(n)
    if self.total_tokens is not None:
      end, total = self.end_value, self.total_tokens
      start = total - self.decay_tokens
      down = shaped_decay(self._law(start), end, n - start, self.decay_tokens, self.decay_shape)
      # Pinned: n - start may round below decay_tokens at n = total.
      after = jnp.where(n < start, after, jnp.where(n >= total, end, down))
    w = self.warmup_tokens
    return linear_warmup(self.init_value, self._law(w), n, w, after)

  def _tail(self, t_float, t):
    # Without a final decay the law keeps falling past int32 steps: use the float step.
    return self._value(t, t_float)


@register(
  "power_scheduler",
  PowerScheduler,
  example=dict(
    peak_value=0.1,
    tokens_per_step=1000,
    a=4.6,
    b=-0.51,
    beta=4.0,
    warmup_tokens=10_000,
    total_tokens=100_000,
    decay_tokens=20_000,
  ),
)
def power_scheduler(
  peak_value: Any,
  tokens_per_step: Any,
  a: Any,
  b: Any,
  beta: Any = 1.0,
  warmup_tokens: Any = 0.0,
  total_tokens: Any = None,
  decay_tokens: Any = None,
  end_value: Any = 0.0,
  init_value: Any = 0.0,
  decay_shape: str = "exponential",
  *,
  decay_fraction: Any = None,
) -> PowerScheduler:
  r"""The Power scheduler: a power law of the tokens seen, capped, with a warmup and a decay.

  .. math::
    \eta(t) = \begin{cases}
      \eta_i + (\eta_{pow}(N_w) - \eta_i)\, \frac{n}{N_w} & n < N_w \\
      \eta_{pow}(n) & N_w \le n < N - N_d \\
      \eta_e + (\eta_{pow}(N - N_d) - \eta_e)\, f\!\left(\frac{n - N + N_d}{N_d}\right)
        & N - N_d \le n < N \\
      \eta_e & n \ge N
    \end{cases}
    \qquad \eta_{pow}(n) = \min\left(\eta_{\max},\ \beta\, a\, n^{b}\right), \quad n = t\, \tau

  with :math:`n` the tokens seen before update :math:`t`, :math:`\tau` = `tokens_per_step`
  (batch size times sequence length), :math:`\eta_{\max}` = `peak_value`, :math:`a, b, \beta`
  = `a`, `b` (< 0), `beta`, and in tokens :math:`N_w` = `warmup_tokens`, :math:`N` =
  `total_tokens` and :math:`N_d` = `decay_tokens`; :math:`\eta_e` = `end_value`,
  :math:`\eta_i` = `init_value`; the decay shape :math:`f(p)` is
  :math:`(e^{1 - p} - 1)/(e - 1)` (`"exponential"`), :math:`1 - p` (`"linear"`),
  :math:`\tfrac12(1 + \cos \pi p)` (`"cosine"`) or :math:`1 - \sqrt{p}` (`"1-sqrt"`). Without
  `total_tokens` there is no decay: the law goes on (past :math:`2^{31} - 1` steps too, from
  the float step). The value is exactly :math:`\eta_i` at 0, exactly :math:`\eta_{pow}(N_w)`
  at :math:`n = N_w`, exactly :math:`\eta_{pow}(N - N_d)` where the decay starts and exactly
  :math:`\eta_e` from :math:`N` on; at :math:`n = 0` the law is infinite and the cap holds
  (no warmup: the schedule starts at :math:`\eta_{\max}`).

  This is the Power scheduler of Shen et al. 2024 ("Power Scheduler: A Batch Size and Token
  Number Agnostic Learning Rate Scheduler", arXiv 2408.13359): their
  :math:`\eta_{power}(n) = \min(\eta_{\max}, \beta a n^b)` over the tokens trained :math:`n`, a
  linear warmup to :math:`\eta_{power}(N_{warmup})` and a decay over the last :math:`N_{decay}`
  tokens of :math:`f \cdot \eta_{power}(N - N_{decay})`, from the law's value where the decay
  starts (unlike timm's power stable phase, which keeps falling under its decay). The default
  `"exponential"` decay is the normalised exponential of the authors' training library
  (dolomite-engine's exponential schedule from 1 to the end ratio; timm's `decay_fn="exp"` with
  `decay_ratio` :math:`1/e`). The paper fits :math:`b \approx -0.51` and :math:`a` of about 4
  to 4.6 with :math:`\beta` the batch size (its optimal rate for WSD is
  :math:`\eta_{opt} = \beta a T^b`) under μP; those values are for its models and units, not
  defaults here.

  **Batch size.** The durations and the law count tokens, so the rate depends on the tokens
  seen alone: two runs whose batches differ (:math:`\tau_1 \ne \tau_2`) see the same rate
  after the same tokens, a larger batch reaching them in fewer steps. To follow the paper's
  :math:`\eta \propto \beta`, set `beta` to the batch size: the rate at equal tokens then grows
  with the batch, and :math:`a, b, \eta_{\max}` carry over between batch sizes and lengths.

  **Precision.** Tokens are float32: :math:`n = t\,\tau` is one float32 product (int32 would
  overflow past :math:`2^{31}` tokens, 512 steps of 4M tokens), within a relative
  :math:`2^{-24} \approx 6 \cdot 10^{-8}` of the exact count (twice that past :math:`2^{24}`
  steps, where the step is rounded too), which moves :math:`n^b` by about
  :math:`3 \cdot 10^{-8}` relative. The token counts are stored in float32: whole numbers up to
  :math:`2^{24}` exactly, larger ones to 24 significant bits (:math:`10^{12}` to a multiple of
  65,536). With a whole :math:`\tau \le 2^{24}`, a boundary of :math:`k \le 2^{24}` whole steps
  (:math:`N_w` or :math:`N = k\tau`) is met at step :math:`k` exactly: :math:`t\,\tau` and the
  stored boundary are the same rounding of :math:`k\tau`.

  Args:
    peak_value: :math:`\eta_{\max}`, the cap, finite and >= 0.
    tokens_per_step: :math:`\tau > 0`, the tokens of one update (batch size x sequence length).
    a: :math:`a > 0`, the law's coefficient.
    b: :math:`b < 0`, the law's exponent (the paper's fit: -0.51).
    beta: :math:`\beta > 0`, a factor on the law (the paper's batch size; default 1).
    warmup_tokens: :math:`N_w \ge 0`, tokens of linear warmup (default 0: none).
    total_tokens: :math:`N > 0`, the tokens of the run, or None (default) for no final decay.
    decay_tokens: :math:`N_d > 0`, the tokens of the final decay (with `total_tokens`; or give
      `decay_fraction`), at most :math:`N - N_w`.
    end_value: :math:`\eta_e`, the final value (default 0).
    init_value: :math:`\eta_i`, the value at step 0 (default 0).
    decay_shape: `"exponential"` (default), `"linear"`, `"cosine"` or `"1-sqrt"`.
    decay_fraction: :math:`N_d / N` in (0, 1] (with `total_tokens`; not with `decay_tokens`).
      The schedule stores the resolved `decay_tokens`.

  Returns:
    A `PowerScheduler` schedule.

  Raises:
    ValueError: if a value is negative or not finite, `tokens_per_step`, `a` or `beta` is not
      positive, `b` is not negative, `total_tokens` is given without a decay (or a decay without
      `total_tokens`), both `decay_tokens` and `decay_fraction` are given, a fraction is
      outside (0, 1], the warmup and the decay do not fit in `total_tokens`, or the shape is
      unknown.

  Example:
    >>> small = lrjax.power_scheduler(0.01, 2048, a=4.6, b=-0.51, warmup_tokens=2**16)
    >>> [round(float(small(t)), 6) for t in (0, 16, 32, 512)]
    [0.0, 0.005, 0.01, 0.003911]
    >>> large = small.replace(tokens_per_step=4096)  # twice the batch: the same tokens
    >>> [round(float(large(t)), 6) for t in (0, 8, 16, 256)]
    [0.0, 0.005, 0.01, 0.003911]
    >>> s = small.replace(total_tokens=2**21, decay_tokens=2**19)  # decays from step 768
    >>> [round(float(s(t)), 6) for t in (767, 768, 900, 1024)]
    [0.003182, 0.00318, 0.001153, 0.0]
  """
  total, decay = _resolve_decay(total_tokens, decay_tokens, decay_fraction)
  warmup_tokens = checks.non_negative("warmup_tokens", warmup_tokens)
  if total is not None:
    _check_fit(warmup_tokens, decay, total)
  return PowerScheduler(
    peak_value=checks.lr_value("peak_value", peak_value),
    tokens_per_step=checks.positive("tokens_per_step", tokens_per_step),
    a=checks.positive("a", a),
    b=checks.real("b", b, hi=0.0, hi_open=True, what="< 0 (a falling power law)"),
    beta=checks.positive("beta", beta),
    warmup_tokens=warmup_tokens,
    total_tokens=total,
    decay_tokens=decay,
    end_value=checks.lr_value("end_value", end_value),
    init_value=checks.lr_value("init_value", init_value),
    decay_shape=checks.choice("decay_shape", decay_shape, POWER_DECAY_SHAPES),
  )


def _resolve_decay(total: Any, decay: Any, fraction: Any) -> tuple[Any, Any]:
  """(N, N_d) as float32 leaves, or (None, None) without a final decay."""
  if total is None:
    for name, value in (("decay_tokens", decay), ("decay_fraction", fraction)):
      if value is not None:
        raise ValueError(f"{name} needs total_tokens, got {name}={value!r} and no total_tokens")
    return None, None
  total = checks.positive("total_tokens", total)
  if decay is not None and fraction is not None:
    raise ValueError(f"decay_tokens={decay!r} and decay_fraction={fraction!r} both given: give one")
  if decay is None and fraction is None:
    raise ValueError(
      "total_tokens needs a final decay: give decay_tokens, or decay_fraction of total_tokens"
    )
  if fraction is not None:
    fraction = checks.real("decay_fraction", fraction, lo=0.0, hi=1.0, lo_open=True)
    decay = fraction * total
  return total, checks.positive("decay_tokens", decay)


def _check_fit(warmup: Any, decay: Any, total: Any) -> None:
  """N_w + N_d <= N, when all three are concrete."""
  if any(checks.is_traced(x) for x in (warmup, decay, total)):
    return
  w, d, n = (float(np.asarray(x)) for x in (warmup, decay, total))
  if w + d > n:
    raise ValueError(
      f"total_tokens must hold the warmup and the decay, got total_tokens={n:g} < "
      f"warmup_tokens + decay_tokens = {w:g} + {d:g}"
    )


__all__ = ["power_scheduler"]
