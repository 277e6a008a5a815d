"""The arithmetic the schedule formulas share: exact ends, safe divisions and powers, ramps.

Every helper takes int32 steps (as `Schedule.__call__` hands them over) and float32 values, and
keeps the contract the schedules promise: exact values at the ends of a phase, monotone between
them, finite gradients everywhere. Helpers named for known values (`known_equal`, `unit_scale`,
`exact_gap`) look at a hyperparameter on the host when it is a compile-time constant and let a
formula take a cheaper exact path; traced values always take the general one.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.schedules.steps import host_scalar


def safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
  """num / den with den == 0 mapped to 0, and a gradient that stays finite there."""
  zero = den == 0
  return jnp.where(zero, 0.0, num / jnp.where(zero, 1.0, den))


def fraction_left(t: jax.Array, total: jax.Array) -> jax.Array:
  """(T - min(t, T)) / T in float32: exactly 1 at t = 0 and exactly 0 at t >= T.

  XLA may compute x / T as x * (1 / T), which is not exact, so both ends are pinned explicitly.
  """
  t = jnp.clip(t, 0, total)
  frac = safe_div((total - t).astype(jnp.float32), jnp.asarray(total, jnp.float32))
  return jnp.where(t <= 0, 1.0, jnp.where(t >= total, 0.0, frac))


def fraction_done(t: jax.Array, total: jax.Array) -> jax.Array:
  """min(t, T) / T in float32: exactly 0 at t = 0 and exactly 1 at t >= T."""
  t = jnp.clip(t, 0, total)
  frac = safe_div(t.astype(jnp.float32), jnp.asarray(total, jnp.float32))
  return jnp.where(t >= total, 1.0, jnp.where(t <= 0, 0.0, frac))


def safe_pow(base: jax.Array, exponent: jax.Array) -> jax.Array:
  """base ** exponent for base >= 0 with 0 ** 0 = 1 and gradients that stay finite at base = 0."""
  pos = base > 0
  powered = jnp.power(jnp.where(pos, base, 1.0), exponent)
  return jnp.where(pos, powered, jnp.where(exponent == 0, 1.0, 0.0))


def blend(start: Any, end: Any, m: jax.Array) -> jax.Array:
  """lo + (hi - lo) * m, with m in [0, 1] measured from the smaller end lo = min(start, end).

  The one interpolation every schedule uses (`lerp`, `interpolate` and `anchored_blend` add how
  the fraction is measured and pinned). Anchored at the smaller end, values near it (a decay to 0,
  a warmup from 0) keep full relative precision; capped at hi, a rounded value cannot overshoot,
  so the result stays monotone in m. Unpinned: callers make the ends exact.
  """
  lo, hi = jnp.minimum(start, end), jnp.maximum(start, end)
  return jnp.minimum(lo + (hi - lo) * m, hi)


def lerp(start: jax.Array, end: jax.Array, frac: jax.Array, rest: Any = None) -> jax.Array:
  """start + (end - start) * frac as `blend`: exactly `start` at frac <= 0, `end` at frac >= 1.

  `rest` is 1 - frac where the caller has it exactly (from integer steps): a falling value is
  measured from `end` with it.
  """
  rest = 1.0 - frac if rest is None else rest
  v = blend(start, end, jnp.where(start <= end, frac, rest))
  return jnp.where(frac <= 0, start, jnp.where(frac >= 1, end, v))


def known_equal(x: Any, value: float) -> bool:
  """True when `x` is known at trace time (not traced) and equal to `value` everywhere.

  Lets a formula drop work that a hyperparameter makes unnecessary (an exponent of 1) when the
  schedule's values are compile-time constants; traced values take the general path.
  """
  if isinstance(x, jax.core.Tracer):
    return False
  return bool(np.all(np.asarray(x) == value))


def _exact_neighbour(guess: np.float32, hits) -> np.float32 | None:
  """`guess` or one of the float32s next to it for which `hits` holds, or None."""
  up, down = np.float32(np.inf), np.float32(-np.inf)
  for cand in (guess, np.nextafter(guess, up), np.nextafter(guess, down)):
    if hits(np.float32(cand)):
      return np.float32(cand)
  return None


def unit_scale(total: Any) -> np.float32 | None:
  """A float32 r with T * r == 1 exactly, for a known integer T in [1, 2**24]; else None.

  (T - t) * r is then exactly 1 at t = 0 and exactly 0 at t = T: a fraction with exact ends and
  no pins. (XLA computes x / T as x * fl(1 / T), which can miss 1 by an ulp.)
  """
  n = host_scalar(total)
  if n is None or not 1 <= int(n) <= 2**24:
    return None
  t = np.float32(int(n))
  return _exact_neighbour(np.float32(1) / t, lambda r: t * r == np.float32(1))


def exact_gap(end: Any, start: Any) -> np.float32 | None:
  """A float32 gap with end + gap == start exactly, for known scalars; else None.

  end + gap * y then starts exactly at `start` (y = 1) and ends exactly at `end` (y = 0), and is
  monotone in y, without pins. None also when no float32 next to start - end is such a gap.
  """
  e, s = host_scalar(end), host_scalar(start)
  if e is None or s is None:
    return None
  e, s = np.float32(e), np.float32(s)
  return _exact_neighbour(s - e, lambda g: e + g == s)


def whole_div(a: Any, b: Any) -> jax.Array:
  """a // b for int32 a >= 0 and b >= 1: C division, which is floor division for these signs.

  jnp's `//` adds sign corrections that cost a remainder, compares and a select per element.
  """
  a, b = jnp.broadcast_arrays(jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32))
  return jax.lax.div(a, b)


def whole_mod(a: Any, b: Any) -> jax.Array:
  """a % b for int32 a >= 0 and b >= 1 (C remainder, which is Python's for these signs)."""
  a, b = jnp.broadcast_arrays(jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32))
  return jax.lax.rem(a, b)


def power_of(base: jax.Array, exponent: Any) -> jax.Array:
  """base ** exponent for base >= 0 as `safe_pow`; a known whole exponent is multiplications."""
  p = host_scalar(exponent)
  if p is not None and float(p).is_integer() and 0 < float(p) <= 8:
    return jax.lax.integer_pow(base, int(p))  # finite gradients at 0 for p >= 1
  return safe_pow(base, exponent)


def sin_squared_ramp(x: jax.Array) -> jax.Array:
  """sin(pi x / 2) ** 2 = (1 - cos(pi x)) / 2, unpinned (callers pin their ends)."""
  return jnp.square(jnp.sin((0.5 * np.pi) * x))


def fraction_from(t: jax.Array, total: Any, from_start: Any) -> jax.Array:
  """min(t, T) / T where `from_start`, else (T - min(t, T)) / T, in float32 (unpinned).

  The numerator is an exact integer; T = 0 divides by 1, keeping values and gradients finite.
  """
  tc = jnp.minimum(t, total)
  n = jnp.where(from_start, tc, total - tc).astype(jnp.float32)
  return n / jnp.maximum(total, 1).astype(jnp.float32)


def round_f32(q: Fraction) -> np.float32:
  """The float32 nearest to the exact rational `q` (ties to even): one rounding, as an FMA's."""
  guess = np.float32(float(q))  # float(q) rounds once to float64; float32 may then be an ulp off
  up, down = np.float32(np.inf), np.float32(-np.inf)
  cands = [c for c in (guess, np.nextafter(guess, up), np.nextafter(guess, down)) if np.isfinite(c)]
  err = [abs(Fraction(float(c)) - q) for c in cands]
  best = min(err)
  near = [c for c, d in zip(cands, err) if d == best]
  return min(near, key=lambda c: int(np.asarray(c).view(np.uint32)) & 1)


def ramp_slope(lo: Any, hi: Any, total: int) -> tuple[np.float32, bool] | None:
  """A float32 slope c >= 0 for the ramp lo + n * c (0 <= n <= T), and whether it is exact.

  Exact: lo + T * c == hi, both ways XLA may evaluate it (rounding the product and the sum each,
  as on CPUs, or once in a fused multiply-add, as GPUs contract them). When no float32 next to
  (hi - lo) / T is (often for lo = 0: T * c then has to round to hi itself), the smallest c above
  it for which lo + T * c >= hi both ways: capped at hi, the ramp then still ends exactly at hi.
  None in the unlikely case that a few ulps up do not reach hi.

  One constant, not `unit_scale` times `exact_gap`: XLA folds `(n * a) * b` into `n * (a * b)`,
  rounding a * b, so a product of exact constants does not stay exact.
  """
  lo, hi, t = np.float32(lo), np.float32(hi), np.float32(total)

  def ends(c: np.float32) -> tuple[np.float32, np.float32]:
    return lo + t * c, round_f32(Fraction(float(lo)) + total * Fraction(float(c)))

  def hits(c: np.float32) -> bool:
    return bool(c >= 0) and all(e == hi for e in ends(c))

  guess = np.float32((float(hi) - float(lo)) / total)
  exact = _exact_neighbour(guess, hits)
  if exact is not None:
    return exact, True
  c = guess
  for _ in range(8):
    if all(e >= hi for e in ends(c)):
      return c, False
    c = np.nextafter(c, np.float32(np.inf))
  return None


_TINY = np.finfo(np.float32).tiny  # the smallest normal float32


def known_ramp(start: Any, end: Any, tc: jax.Array, total: Any) -> jax.Array | None:
  """`start` -> `end` linearly over `total` steps from known values; None when any is traced.

  `tc` holds the steps already clipped to [0, total]. The ramp is lo + n * c, where lo is the
  smaller end, n counts the steps from lo's end (T - tc for a decay, tc for a rise) and c is a
  `ramp_slope` (capped at hi when it is not exact): exactly `start` at tc = 0 and `end` at
  tc = T, monotone and at most hi between, without pins. A subtract, a convert, a multiply-add
  and at most a minimum per step (optax's `1 - t / T` takes a multiply and a subtract, and is not
  exact at T). Known integer T up to 2**24 only, where n converts to float32 exactly.
  """
  n_total, s, e = host_scalar(total), host_scalar(start), host_scalar(end)
  if n_total is None or s is None or e is None or not float(n_total).is_integer():
    return None
  steps = int(n_total)
  if not 1 <= steps <= 2**24:
    return None
  s, e = np.float32(s), np.float32(e)
  rising = bool(s < e)
  lo, hi = (s, e) if rising else (e, s)
  slope = ramp_slope(lo, hi, steps)
  if slope is None or not all(x == 0 or x >= _TINY for x in (lo, hi, slope[0])):
    return None  # a subnormal operand: XLA:CPU flushes it to 0, losing the exact ends
  n = tc if rising else steps - tc
  v = lo + n.astype(jnp.float32) * slope[0]
  return v if slope[1] else jnp.minimum(v, hi)


def linear_ramp(start: Any, end: Any, t: jax.Array, total: Any) -> jax.Array:
  """`interpolate` (linear) for steps t >= 0, as `Schedule.__call__` hands them over.

  `known_ramp` when the values are known, with the steps clipped by min(t, T) alone: the clip in
  `interpolate` adds a max per step that XLA does not merge with the one in `as_int32_step`.
  """
  ramp = known_ramp(start, end, jnp.minimum(t, total), total)
  return interpolate(start, end, t, total) if ramp is None else ramp


def anchored_blend(
  start: Any, end: Any, m: jax.Array, t: jax.Array, total: Any, last: Any = None
) -> jax.Array:
  """`blend(start, end, m)` pinned by steps: exactly `start` at t <= 0 and exactly `last`
  (default `end`) at t >= total."""
  v = blend(start, end, m)
  return jnp.where(t >= total, end if last is None else last, jnp.where(t <= 0, start, v))


def interpolate(
  start: Any,
  end: Any,
  t: jax.Array,
  total: Any,
  shape: Callable[[jax.Array], jax.Array] | None = None,
) -> jax.Array:
  """`start` -> `end` over `total` steps along a symmetric `shape`, exact at both ends.

  `shape` maps the fraction x in [0, 1] to [0, 1] with shape(0) = 0, shape(1) = 1 and
  1 - shape(1 - x) = shape(x) (linear when None; `sin_squared_ramp` for a cosine). The value is
  anchored at the smaller end: lo + (hi - lo) * shape(x), with x measured from that end, so a decay
  to 0 or a warmup from 0 keeps full relative precision there, and only one shape is evaluated.
  Exactly `start` at t <= 0 and `end` at t >= total (also for total = 0), monotone in between.
  A linear ramp with known values is `known_ramp`.
  """
  if shape is None:
    ramp = known_ramp(start, end, jnp.clip(t, 0, total), total)
    if ramp is not None:
      return ramp
  x = fraction_from(t, total, start < end)
  return anchored_blend(start, end, x if shape is None else shape(x), t, total)


def cosine_ramp(frac: jax.Array) -> jax.Array:
  """(1 - cos(pi * frac)) / 2: exactly 0 at frac <= 0 and exactly 1 at frac >= 1.

  `sin_squared_ramp` with pinned ends; the sine keeps full relative precision near frac = 0,
  where 1 - cos cancels.
  """
  return jnp.where(frac <= 0, 0.0, jnp.where(frac >= 1, 1.0, sin_squared_ramp(frac)))


def linear_warmup(init: Any, peak: Any, t: jax.Array, warmup_steps: Any, after: Any) -> jax.Array:
  """init + (peak - init) * t / W for t < W, then `after`: exactly `init` at t = 0.

  The warmup every schedule with a `warmup_steps` prefix shares. The ramp's own value at W is
  exactly `peak` only when `init` is 0, so `after` (which starts at the peak) takes over at W.
  """
  up = init + (peak - init) * fraction_done(t, warmup_steps)
  return jnp.where(t < warmup_steps, up, after)


WARMUP_SHAPES = ("linear", "cosine", "1-sqrt", "exponential")


def shaped_warmup(
  init: Any, peak: Any, t: jax.Array, warmup_steps: Any, after: Any, shape: str
) -> jax.Array:
  """A warmup from `init` to `peak` along `shape` for t < W, then `after`; exactly `init` at 0.

  `shape` is one of WARMUP_SHAPES: with p = t / W, the value is init + (peak - init) g(p) with
  g(p) = p ("linear"), (1 - cos(pi p)) / 2 ("cosine"), 1 - sqrt(1 - p) ("1-sqrt"), or the
  geometric init (peak / init)^p ("exponential", which needs init > 0: callers check it).
  """
  if shape == "linear":
    return linear_warmup(init, peak, t, warmup_steps, after)
  if shape == "cosine":
    up = interpolate(init, peak, t, warmup_steps, sin_squared_ramp)
  elif shape == "1-sqrt":
    up = init + (peak - init) * (1.0 - jnp.sqrt(fraction_left(t, warmup_steps)))
  else:
    ratio = safe_div(jnp.asarray(peak, jnp.float32), jnp.asarray(init, jnp.float32))
    up = init * safe_pow(ratio, fraction_done(t, warmup_steps))
  return jnp.where(t < warmup_steps, up, after)


def cosine_mix(start: Any, end: Any, done: jax.Array, left: jax.Array, exponent: Any = 1.0):
  """end + (start - end) * c with c = ((1 + cos(pi * done)) / 2) ** exponent.

  c = sin(pi * left / 2) ** (2 exponent) from the exact fraction left keeps a decay's precision
  next to its end; for exponent 1, 1 - c = sin(pi * done / 2) ** 2 does the same at the start.
  """
  c = safe_pow(cosine_ramp(left), exponent)
  return lerp(start, end, jnp.where(exponent == 1, cosine_ramp(done), 1.0 - c), c)


def cosine_between(start: Any, end: Any, t: jax.Array, total: Any, exponent: Any = 1.0):
  """Cosine from `start` at t = 0 to `end` at t >= total: end + (start - end) * c ** exponent.

  c = (1 + cos(pi * min(t, T) / T)) / 2 = sin(pi * left / 2) ** 2 with left = (T - min(t, T)) / T.
  Exponent 1 (the usual cosine) is `interpolate` along sin**2: one sine, anchored at the smaller
  end. Other exponents raise the ramp measured from `end`, where a decay then keeps its precision;
  exponent 0 is the constant `start` (c ** 0 = 1 everywhere, as in optax).
  """
  if known_equal(exponent, 1.0):
    return interpolate(start, end, t, total, sin_squared_ramp)
  rising, one = start < end, exponent == 1
  # Exponent 1 measures from the smaller end (as `interpolate`); others from `end`.
  r = sin_squared_ramp(fraction_from(t, total, rising & one))
  c = safe_pow(r, exponent)
  m = jnp.where(one, r, jnp.where(rising, 1.0 - c, c))
  return anchored_blend(start, end, m, t, total, last=jnp.where(exponent == 0, start, end))


DECAY_SHAPES = ("linear", "cosine", "1-sqrt")
# f(p) = (e^(1 - p) - 1) / (e - 1): exp(-p) rescaled to fall from 1 to exactly 0.
_EXP_SCALE = np.float32(1.0 / np.expm1(1.0))


def shaped_decay(start: Any, end: Any, u: jax.Array, total: Any, shape: str) -> jax.Array:
  """`start` -> `end` over `total` along a decay shape, `u` into the decay (steps or tokens).

  `shape` is one of DECAY_SHAPES or "exponential": with p = u / D, the value is
  end + (start - end) f(p) with f(p) = 1 - p ("linear"), (1 + cos(pi p)) / 2 ("cosine"),
  1 - sqrt(p) ("1-sqrt", Hägele et al. 2024) or (e^(1 - p) - 1) / (e - 1) ("exponential",
  exp(-p) rescaled to reach 0). Exactly `start` at u <= 0 and exactly `end` at u >= D. `u` and
  `total` are int32 steps, or float32 (a count of tokens) of one kind.
  """
  if shape in ("linear", "cosine"):
    return interpolate(start, end, u, total, sin_squared_ramp if shape == "cosine" else None)
  # Both shapes from the exact fraction left, 1 - p: computed as 1 - p near the end, an ulp of p
  # would become D / (D - u) ulps of the value.
  p, left = fraction_done(u, total), fraction_left(u, total)
  if shape == "1-sqrt":
    root = jnp.sqrt(jnp.where(p > 0, p, 1.0))  # sqrt has no finite gradient at 0
    f = left / (1.0 + root)  # = 1 - sqrt(p)
  else:
    f = jnp.minimum(jnp.expm1(left) * _EXP_SCALE, 1.0)  # a rounded scale may pass 1
  return jnp.where(p <= 0, start, end + (start - end) * f)
