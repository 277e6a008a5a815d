"""Learning rate and momentum of PyTorch `OneCycleLR` and `CyclicLR` with `cycle_momentum=True`.

Every step of each setting: `OneCycleLR` from 0 to `total_steps` (one more step raises),
`CyclicLR` over three cycles and a few steps more. The lr and the momentum are read from the
optimizer's param group before each step, as a training loop would use them. The parity test is
`tests/test_momentum.py`.
"""

from __future__ import annotations

from peers import common

# OneCycleLR settings: the defaults, a warmup end p * T that is not whole (0.25 * 57 = 14.25),
# three phases (whole and fractional), a linear anneal, and a p * T that float64 rounds below an
# integer (0.29 * 100 = 28.999999999999996).
ONE_CYCLE = (
  dict(max_lr=0.1, total_steps=100),
  dict(max_lr=0.1, total_steps=57, pct_start=0.25),
  dict(max_lr=0.1, total_steps=100, three_phase=True),
  dict(max_lr=0.1, total_steps=57, pct_start=0.25, three_phase=True, anneal_strategy="linear"),
  dict(max_lr=0.1, total_steps=100, anneal_strategy="linear"),
  dict(max_lr=0.1, total_steps=100, pct_start=0.29),
  dict(
    max_lr=1.0,
    total_steps=10,
    pct_start=0.4,
    base_momentum=0.8,
    max_momentum=0.9,
    div_factor=10.0,
    final_div_factor=100.0,
  ),
)

# CyclicLR settings: each mode, with a descent longer or shorter than the ascent.
CYCLIC = (
  dict(step_size_up=5, step_size_down=8, mode="triangular"),
  dict(step_size_up=4, mode="triangular"),
  dict(step_size_up=4, step_size_down=6, mode="triangular2"),
  dict(step_size_up=5, step_size_down=3, mode="exp_range", gamma=0.98),
)
CYCLIC_VALUES = dict(base_lr=0.01, max_lr=0.1, base_momentum=0.8, max_momentum=0.9)


def _optimizer():
  import torch

  return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)


def _record(scheduler, optimizer, steps: int) -> tuple[list[float], list[float]]:
  lrs, momenta = [], []
  for t in range(steps):
    group = optimizer.param_groups[0]
    lrs.append(float(group["lr"]))
    momenta.append(float(group["momentum"]))
    if t < steps - 1:
      optimizer.step()
      scheduler.step()
  return lrs, momenta


def _case_id(prefix: str, settings: dict) -> str:
  return prefix + "-" + "-".join(f"{k}={v}" for k, v in settings.items())


def one_cycle() -> list[dict]:
  from torch.optim.lr_scheduler import OneCycleLR

  cases = []
  for settings in ONE_CYCLE:
    opt = _optimizer()
    sched = OneCycleLR(opt, cycle_momentum=True, **settings)
    # Full settings, the defaults included, so the record says what ran.
    full = dict(
      max_lr=settings["max_lr"],
      total_steps=settings["total_steps"],
      pct_start=settings.get("pct_start", 0.3),
      anneal_strategy=settings.get("anneal_strategy", "cos"),
      base_momentum=settings.get("base_momentum", 0.85),
      max_momentum=settings.get("max_momentum", 0.95),
      div_factor=settings.get("div_factor", 25.0),
      final_div_factor=settings.get("final_div_factor", 1e4),
      three_phase=settings.get("three_phase", False),
    )
    lrs, momenta = _record(sched, opt, settings["total_steps"] + 1)
    cases.append(
      dict(
        id=_case_id("onecycle", settings),
        peer="torch.optim.lr_scheduler.OneCycleLR",
        settings=full,
        lr=lrs,
        momentum=momenta,
      )
    )
  return cases


def cyclic() -> list[dict]:
  from torch.optim.lr_scheduler import CyclicLR

  cases = []
  for settings in CYCLIC:
    opt = _optimizer()
    sched = CyclicLR(opt, cycle_momentum=True, **CYCLIC_VALUES, **settings)
    up = settings["step_size_up"]
    down = settings.get("step_size_down") or up
    full = dict(
      **CYCLIC_VALUES,
      step_size_up=up,
      step_size_down=down,
      mode=settings["mode"],
      gamma=settings.get("gamma", 1.0),
    )
    lrs, momenta = _record(sched, opt, 3 * (up + down) + 3)
    cases.append(
      dict(
        id=_case_id("cyclic", settings),
        peer="torch.optim.lr_scheduler.CyclicLR",
        settings=full,
        lr=lrs,
        momentum=momenta,
      )
    )
  return cases


def main() -> None:
  common.write("torch_momentum", ("torch",), one_cycle() + cyclic())


if __name__ == "__main__":
  main()
