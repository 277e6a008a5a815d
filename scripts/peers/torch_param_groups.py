"""Per-group learning rates of PyTorch's SGD with two parameter groups under one `LambdaLR`.

A backbone and a head, each a param group of `torch.optim.SGD` with `lr=0.1`, and `LambdaLR`
with one lambda per group: the backbone on a cosine over 20 steps, the head at ten times it, or
the head on a 5-step linear warmup to ten times the base rate, held. Every group's lr is read
before each of 20 steps, as a training loop would use it. The parity test is
`tests/test_torch_param_groups.py`.
"""

from __future__ import annotations

import math

from peers import common

STEPS = 20
BASE_LR = 0.1
WARMUP = 5


def _cosine(t: int) -> float:
  return 0.5 * (1.0 + math.cos(math.pi * t / STEPS))


# Each case's lambdas by group, and what they are in words (the record says what ran).
CASES = {
  "cosine-head-10x": {
    "backbone": (_cosine, "0.5 * (1 + cos(pi * t / 20))"),
    "head": (lambda t: 10.0 * _cosine(t), "10 * 0.5 * (1 + cos(pi * t / 20))"),
  },
  "cosine-head-warmup-10x": {
    "backbone": (_cosine, "0.5 * (1 + cos(pi * t / 20))"),
    "head": (lambda t: 10.0 * min(1.0, t / WARMUP), "10 * min(1, t / 5)"),
  },
}


def _rates(lambdas: dict) -> dict[str, list[float]]:
  import torch

  params = {name: torch.nn.Parameter(torch.zeros(2)) for name in lambdas}
  optimizer = torch.optim.SGD(
    [{"params": [p], "lr": BASE_LR, "name": name} for name, p in params.items()], lr=BASE_LR
  )
  scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [fn for fn, _ in lambdas.values()])
  rates: dict[str, list[float]] = {name: [] for name in lambdas}
  for _ in range(STEPS):
    for group in optimizer.param_groups:
      rates[group["name"]].append(float(group["lr"]))
    for p in params.values():
      p.grad = torch.ones_like(p)
    optimizer.step()
    scheduler.step()
  return rates


def main() -> None:
  cases = []
  for case_id, lambdas in CASES.items():
    settings = {
      "optimizer": "SGD",
      "lr": BASE_LR,
      "steps": STEPS,
      "lr_lambda": {name: text for name, (_, text) in lambdas.items()},
    }
    cases.append({"id": case_id, "settings": settings, "values": _rates(lambdas)})
  common.write("torch_param_groups", ("torch",), cases)
