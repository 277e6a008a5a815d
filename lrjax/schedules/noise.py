"""Multiplicative noise on a schedule, timm's rule: `noise_range_t`, `noise_pct`, `noise_std`.

The noise at a step is a pure function of the step and a seed: a counter-based hash, no generator
state. So a noisy schedule is jittable, vmappable over its seed, and the same at a step however
often and in whatever batch it is evaluated; its values do not depend on JAX's random-number
settings either. timm draws from torch's generator seeded with `seed + t`, which JAX cannot
reproduce: the rule is timm's, the draws are not.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, schedule_class, static_field
from lrjax.schedules.composite import Wrapper, evaluate
from lrjax.schedules.config import register
from lrjax.schedules.cosine import cosine_decay

NOISE_TYPES = ("normal", "uniform")
_GOLDEN = np.uint32(0x9E3779B9)  # 2**32 / golden ratio, odd: spreads consecutive counters


def _hash32(x: jax.Array) -> jax.Array:
  """A bijection of uint32 whose every input bit flips each output bit with probability ~1/2.

  Wellons's `lowbias32` (two multiply-xorshift rounds), an integer hash with a lower bias than
  MurmurHash3's finaliser.
  """
  x = x ^ (x >> np.uint32(16))
  x = x * np.uint32(0x7FEB352D)
  x = x ^ (x >> np.uint32(15))
  x = x * np.uint32(0x846CA68B)
  return x ^ (x >> np.uint32(16))


def symmetric_uniform(seed: Any, t: jax.Array) -> jax.Array:
  """A float32 in the open interval (-1, 1) per step, a hash of (seed, step).

  Uniform on the 2**24 midpoints (2j + 1) / 2**24 - 1: symmetric about 0, never -1 or 1, and
  exact in float32.
  """
  key = _hash32(jnp.asarray(seed, jnp.int32).astype(jnp.uint32) ^ _GOLDEN)
  h = _hash32(key + t.astype(jnp.uint32) * _GOLDEN)
  odd = (h >> np.uint32(8)).astype(jnp.int32) * 2 + (1 - 2**24)
  return odd.astype(jnp.float32) * np.float32(2.0**-24)


@schedule_class
class Noisy(Wrapper):
  schedule: Schedule
  noise_pct: Any
  noise_std: Any
  seed: Any
  noise_start: Any
  noise_end: Any
  noise_type: str = static_field()

  def _value(self, t):
    v = evaluate(self.schedule, t)
    u = symmetric_uniform(self.seed, t)
    pct, std = self.noise_pct, self.noise_std
    if self.noise_type == "normal":
      # The normal truncated to (-pct, pct), which timm's redraw rule samples, by its inverse
      # distribution function: |u| < 1 keeps erfinv's argument inside (-1, 1).
      half_width = jax.lax.erf(pct / (std * np.float32(np.sqrt(2.0))))
      noise = std * np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u * half_width)
    else:
      noise = u * pct
    # Strictly inside the bound, as timm's redraw keeps it, whatever the roundings above.
    bound = pct * np.float32(1.0 - 2.0**-23)
    noise = jnp.clip(noise, -bound, bound)
    on = t >= self.noise_start
    if self.noise_end is not None:
      on = on & (t < self.noise_end)
    return jnp.where(on, v * (1.0 + noise), v)

  def _step_free(self) -> bool:
    return False  # the noise changes with the step even where the schedule does not


@register(
  "noisy",
  Noisy,
  example=dict(
    schedule=cosine_decay(0.1, 100),
    noise_pct=0.2,
    seed=3,
    noise_start=20,
    noise_end=80,
  ),
)
def noisy(
  schedule: Schedule,
  noise_pct: Any = 0.67,
  noise_std: Any = 1.0,
  seed: Any = 42,
  noise_start: Any = 0,
  noise_end: Any = None,
  noise_type: str = "normal",
  *,
  noise_range: Any = None,
) -> Noisy:
  r"""Multiplies a schedule by :math:`1 + n(t)` with a random :math:`n(t)` in :math:`(-q, q)`.

  .. math::
    \eta(t) = \begin{cases}
      s(t)\,(1 + n(t)) & a \le t < b \\
      s(t) & \text{otherwise}
    \end{cases}, \quad
    n(t) \sim \begin{cases}
      \sigma Z \text{ given } |\sigma Z| < q,\ Z \sim \mathcal{N}(0, 1) & \text{normal} \\
      \mathcal{U}(-q, q) & \text{uniform}
    \end{cases}

  with :math:`q` = `noise_pct`, :math:`\sigma` = `noise_std`, :math:`a` = `noise_start` and
  :math:`b` = `noise_end` (:math:`\infty` by default). The rule of timm's schedulers
  (`noise_range_t=(a, b)`, `noise_pct`, `noise_std`, `noise_seed`, `noise_type`): timm redraws a
  normal noise while :math:`|n| \ge q`, which samples the truncated normal drawn here directly.

  The noise is a pure function of (`seed`, step): the same step gives the same value however often,
  in whatever order and in whatever batch it is evaluated, and vmapping over `seed` gives
  independent runs. timm seeds torch's generator with `seed + t`, which JAX cannot reproduce, so
  the values are not timm's: only the rule is (outside :math:`[a, b)` the values are the
  schedule's exactly; inside they lie within :math:`(1 \pm q)\, s(t)`, with the same
  distribution). Past step 2**31 - 1 the noise and the range are those of the step the schedule
  folds to.

  Args:
    schedule: the lrjax schedule to perturb.
    noise_pct: :math:`q \in (0, 1]`, the bound on :math:`|n|` (timm's default 0.67).
    noise_std: :math:`\sigma > 0`, the normal's standard deviation before truncation (default 1;
      unused by the uniform noise).
    seed: an integer in [0, 2**31 - 1] (timm's default 42).
    noise_start: :math:`a`, the first noisy step, an integer >= 0 (default 0).
    noise_end: :math:`b`, the first step after the noise, an integer greater than `noise_start`,
      or None (the default) for noise to the end.
    noise_type: `"normal"` (the truncated normal, the default) or `"uniform"`.
    noise_range: timm's `noise_range_t`, instead of `noise_start` and `noise_end`: a pair
      `(a, b)`, or one step `a` for noise from :math:`a` on.

  Returns:
    A `Noisy` schedule.

  Raises:
    ValueError: if `schedule` is not a schedule, `noise_pct` is not in (0, 1], `noise_std` is not
      positive, `seed` or a step is negative or not an integer, `noise_end <= noise_start`,
      `noise_type` is unknown, or `noise_range` is malformed or given with `noise_start` or
      `noise_end`.

  Example:
    >>> s = lrjax.noisy(lrjax.constant(1.0), noise_pct=0.1, noise_range=(2, 5))
    >>> v = [float(s(t)) for t in range(7)]
    >>> v[:2] + v[5:], all(0.9 < x < 1.1 for x in v[2:5]), float(s(3)) == v[3]
    ([1.0, 1.0, 1.0, 1.0], True, True)
  """
  if noise_range is not None:
    if noise_start is not None and not checks.is_traced(noise_start) and noise_start != 0:
      raise ValueError(
        f"give noise_range or noise_start and noise_end, not both: got noise_range="
        f"{noise_range!r} and noise_start={noise_start!r}"
      )
    if noise_end is not None:
      raise ValueError(
        f"give noise_range or noise_start and noise_end, not both: got noise_range="
        f"{noise_range!r} and noise_end={noise_end!r}"
      )
    noise_start, noise_end = _noise_range(noise_range)
  if isinstance(seed, float) and not seed.is_integer():
    raise ValueError(f"seed must be an integer in [0, 2**31 - 1], got {seed!r}")
  noise_start = checks.steps("noise_start", noise_start)
  if noise_end is not None:
    noise_end = checks.steps("noise_end", noise_end)
    checks.not_longer("noise_start", noise_start, "noise_end", noise_end, strict=True)
  return Noisy(
    schedule=checks.schedule("schedule", schedule),
    noise_pct=checks.real("noise_pct", noise_pct, lo=0.0, hi=1.0, lo_open=True),
    noise_std=checks.positive("noise_std", noise_std),
    seed=checks.integer("seed", seed, minimum=0, what="an integer in [0, 2**31 - 1]"),
    noise_start=noise_start,
    noise_end=noise_end,
    noise_type=checks.choice("noise_type", noise_type, NOISE_TYPES),
  )


def _noise_range(noise_range: Any) -> tuple[Any, Any]:
  """(start, end) of timm's `noise_range_t`: a pair, or one step (end None)."""
  if isinstance(noise_range, (list, tuple)):
    if len(noise_range) != 2:
      raise ValueError(
        f"noise_range must be a step or a pair (start, end) of steps, got {noise_range!r}"
      )
    return noise_range[0], noise_range[1]
  return noise_range, None


__all__ = ["noisy"]
