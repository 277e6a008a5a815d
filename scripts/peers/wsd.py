"""Warmup-stable-decay values of Hugging Face `get_wsd_schedule` and timm `WSDLRScheduler`.

Every step from 0 to a few past the end, for each warmup and decay type, with and without a
floor (`min_lr_ratio`). The parity test is `tests/test_wsd_peers.py`.
"""

from __future__ import annotations

import itertools

from peers import common

PEAK = 0.1
SHAPES = ("linear", "cosine", "1-sqrt")
# (warmup W, decay D, total T): a short one, one with a long stable phase, one with no warmup.
SIZES = ((3, 7, 20), (10, 25, 100), (0, 16, 40))


def _lrs(scheduler, optimizer, steps: int) -> list[float]:
  out = []
  for _ in range(steps):
    out.append(float(optimizer.param_groups[0]["lr"]))
    optimizer.step()
    scheduler.step()
  return out


def _optimizer():
  import torch

  return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)


def hugging_face() -> list[dict]:
  from transformers.optimization import get_wsd_schedule

  cases = []
  for (w, d, total), warm, decay, ratio in itertools.product(SIZES, SHAPES, SHAPES, (0.0, 0.1)):
    opt = _optimizer()
    settings = dict(
      num_warmup_steps=w,
      num_decay_steps=d,
      num_training_steps=total,
      warmup_type=warm,
      decay_type=decay,
      min_lr_ratio=ratio,
    )
    sched = get_wsd_schedule(opt, **settings)
    cases.append(
      dict(
        id=f"hf-W{w}-D{d}-T{total}-{warm}-{decay}-m{ratio}",
        peer="transformers.get_wsd_schedule",
        settings=dict(peak=PEAK, **settings),
        values=_lrs(sched, opt, total + 3),
      )
    )
  return cases


def _timm_case(case_id: str, steps: int, settings: dict) -> dict:
  """timm's `WSDLRScheduler` stepped per update (`step_update(t)`) over `steps` updates."""
  opt = _optimizer()
  sched = common.timm_scheduler().WSDLRScheduler(opt, t_in_epochs=False, **settings)
  values = []
  for t in range(steps):
    sched.step_update(t)
    values.append(float(opt.param_groups[0]["lr"]))
  return dict(
    id=case_id,
    peer="timm.scheduler.WSDLRScheduler",
    settings=dict(peak=PEAK, **settings),
    values=values,
  )


def timm() -> list[dict]:
  cases = []
  for (w, d, total), decay in itertools.product(SIZES, SHAPES):
    settings = dict(t_initial=total - w, decay_t=d, warmup_t=w, decay_fn=decay)
    cases.append(_timm_case(f"timm-W{w}-D{d}-T{total}-{decay}", total + 3, settings))
  return cases


def timm_stable_power() -> list[dict]:
  """timm's decaying stable phases: rsqrt (power 0.5, timescale W) and a power law."""
  cases = []
  stables = (("rsqrt", None, 0.5), ("power", 7, 0.3))
  for (fn, timescale, power), decay, floor in itertools.product(stables, SHAPES, (0.0, 0.01)):
    w, d, total = 10, 25, 100
    settings = dict(
      t_initial=total - w,
      decay_t=d,
      warmup_t=w,
      decay_fn=decay,
      stable_fn=fn,
      stable_timescale=timescale,
      stable_power=power,
      lr_min=floor,
    )
    cases.append(_timm_case(f"timm-{fn}-{decay}-min{floor}", total + 3, settings))
  return cases


def main() -> None:
  cases = hugging_face() + timm() + timm_stable_power()
  common.write("wsd", ("torch", "transformers", "timm"), cases)


if __name__ == "__main__":
  main()
