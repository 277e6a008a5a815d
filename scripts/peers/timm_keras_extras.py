"""timm's k-decay, cycle limit and noise, and Keras's cycling polynomial decay.

- timm `CosineLRScheduler` and `PolyLRScheduler` with `k_decay`, and `CosineLRScheduler` with
  cycles (`cycle_mul`, `cycle_decay`) stopped by `cycle_limit`: every step, read after
  `step_update(t)` with `t_in_epochs=False` (the update with index t uses that value).
- timm's noise (`noise_range_t`, `noise_pct`, `noise_std`, `noise_seed`; `noise_type` set on the
  instance, which `CosineLRScheduler` does not take): every step with and without the noise, and
  the mean, standard deviation and largest size of `_calculate_noise` over many steps.
- Keras `PolynomialDecay(cycle=True)` (and one `cycle=False`), computed in float64.

The parity test is `tests/test_timm_keras_extras.py`.
"""

from __future__ import annotations

import itertools
import math
import os

from peers import common

PEAK = 0.1
NOISE_DRAWS = 20_000


def _optimizer():
  import torch

  return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)


def _timm_values(cls_name: str, settings: dict, steps: int, **after) -> list[float]:
  scheduler = common.timm_scheduler()
  opt = _optimizer()
  sched = getattr(scheduler, cls_name)(opt, t_in_epochs=False, **settings)
  for key, value in after.items():
    setattr(sched, key, value)
  out = []
  for t in range(steps):
    sched.step_update(t)
    out.append(float(opt.param_groups[0]["lr"]))
  return out


def _case(case_id: str, cls_name: str, settings: dict, steps: int) -> dict:
  return dict(
    id=case_id,
    peer=f"timm.scheduler.{cls_name}",
    settings=dict(peak=PEAK, **settings),
    values=_timm_values(cls_name, settings, steps),
  )


def timm_k_decay() -> list[dict]:
  cases = []
  for k, floor in itertools.product((0.5, 2.0, 3.0), (0.0, 0.001)):
    settings = dict(t_initial=50, lr_min=floor, k_decay=k)
    cases.append(_case(f"cosine-k{k}-min{floor}", "CosineLRScheduler", settings, 56))
  for k, power, floor in itertools.product((0.5, 2.0), (0.5, 2.0), (0.0, 0.001)):
    settings = dict(t_initial=50, power=power, lr_min=floor, k_decay=k)
    cases.append(_case(f"poly-k{k}-p{power}-min{floor}", "PolyLRScheduler", settings, 56))
  # A warmup prefix before the k-decayed cosine.
  settings = dict(t_initial=40, warmup_t=6, warmup_lr_init=0.01, warmup_prefix=True, k_decay=2.0)
  cases.append(_case("cosine-k2.0-warmup", "CosineLRScheduler", settings, 50))
  return cases


def timm_cycle_limit() -> list[dict]:
  cases = []
  grid = itertools.product((1.0, 2.0, 1.5), (1.0, 0.5), (1, 3), (1.0, 2.0))
  for mul, decay, limit, k in grid:
    settings = dict(
      t_initial=10, lr_min=0.001, cycle_mul=mul, cycle_decay=decay, cycle_limit=limit, k_decay=k
    )
    # Every cycle up to the limit and 10 steps of the floor after it.
    length = 10 * limit if mul == 1.0 else math.ceil(10 * (mul**limit - 1) / (mul - 1))
    case_id = f"cycles-mul{mul}-decay{decay}-limit{limit}-k{k}"
    cases.append(_case(case_id, "CosineLRScheduler", settings, length + 10))
  return cases


def timm_noise() -> list[dict]:
  scheduler = common.timm_scheduler()
  cases = []
  settings = [
    ("range", dict(noise_range_t=(20, 60)), "normal"),
    ("from", dict(noise_range_t=50), "normal"),
    ("narrow", dict(noise_range_t=(10, 90), noise_pct=0.1, noise_std=0.05, noise_seed=7), "normal"),
    ("uniform", dict(noise_range_t=(20, 60), noise_pct=0.3), "uniform"),
  ]
  for name, noise, kind in settings:
    base = dict(t_initial=100, lr_min=0.001)
    full = dict(base, **noise)
    cases.append(
      dict(
        id=f"noise-{name}",
        peer="timm.scheduler.CosineLRScheduler",
        settings=dict(peak=PEAK, noise_type=kind, **full),
        values=_timm_values("CosineLRScheduler", full, 110, noise_type=kind),
        base=_timm_values("CosineLRScheduler", base, 110),
      )
    )
  for name, pct, std, kind in (
    ("normal", 0.67, 1.0, "normal"),
    ("narrow", 0.1, 0.05, "normal"),
    ("uniform", 0.3, 1.0, "uniform"),
  ):
    sched = scheduler.CosineLRScheduler(
      _optimizer(), t_initial=10, noise_pct=pct, noise_std=std, noise_range_t=0
    )
    sched.noise_type = kind
    draws = [sched._calculate_noise(t) for t in range(NOISE_DRAWS)]
    mean = sum(draws) / len(draws)
    var = sum((d - mean) ** 2 for d in draws) / len(draws)
    cases.append(
      dict(
        id=f"noise-draws-{name}",
        peer="timm.scheduler.Scheduler._calculate_noise",
        settings=dict(noise_pct=pct, noise_std=std, noise_type=kind, draws=NOISE_DRAWS),
        mean=mean,
        std=math.sqrt(var),
        largest=max(abs(d) for d in draws),
      )
    )
  return cases


def keras_polynomial() -> list[dict]:
  os.environ.setdefault("KERAS_BACKEND", "jax")
  import jax

  # float64: Keras's own float32 rounding of 1 - t / H would be part of the reference otherwise.
  jax.config.update("jax_enable_x64", True)
  import keras
  import numpy as np

  cases = []
  grid = [(10, 0.001, 1.0, True), (10, 0.001, 2.0, True), (10, 0.001, 0.5, True)]
  grid += [(7, 0.0, 3.0, True), (10, 0.001, 2.0, False)]
  for decay_steps, end, power, cycle in grid:
    settings = dict(
      initial_learning_rate=PEAK,
      decay_steps=decay_steps,
      end_learning_rate=end,
      power=power,
      cycle=cycle,
    )
    sched = keras.optimizers.schedules.PolynomialDecay(**settings)
    values = [float(sched(np.float64(t))) for t in range(5 * decay_steps + 3)]
    cases.append(
      dict(
        id=f"keras-poly-D{decay_steps}-end{end}-p{power}-cycle{cycle}",
        peer="keras.optimizers.schedules.PolynomialDecay",
        settings=dict(dtype="float64", **settings),
        values=values,
      )
    )
  return cases


def main() -> None:
  cases = timm_k_decay() + timm_cycle_limit() + timm_noise() + keras_polynomial()
  common.write("timm_keras_extras", ("torch", "timm", "keras", "jax"), cases)


if __name__ == "__main__":
  main()
