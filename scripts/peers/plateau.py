"""Reduce-on-plateau in the peers, per step, for the fixed metric sequences in `METRICS`.

- "optax": `optax.chain(optax.sgd(1.0), optax.contrib.reduce_on_plateau(...))` updated with a
  gradient of 1 and `value=` the metric; the values are the scales (minus the updates).
- "torch_warmup": PyTorch `LinearLR(start_factor, total_iters=W)` for the first W steps, then
  `ReduceLROnPlateau.step(metric)` (what `SequentialLR` would do, were it to take
  `ReduceLROnPlateau`); "lr_used" is the learning rate of each step, "values" the learning rate
  after each scheduler step.
- "keras": `keras.callbacks.ReduceLROnPlateau.on_epoch_end(t, {"val_loss": metric})` on a
  compiled model (no training); the values are the optimizer's learning rate after each call.
- "greedylr": `transformers.optimization.GreedyLR.step(metric)`; the values are the learning
  rate after each step.

    /tmp/peers/bin/python scripts/peer_values.py plateau
"""

from __future__ import annotations

import os

import numpy as np

from peers import common

_T = np.arange(40)
_NOISY = 0.5 + 0.5 * np.exp(-_T / 5) + 0.03 * np.random.default_rng(7).standard_normal(40)

# Fixed metric sequences; the JSON keeps each case's own copy, so these may change freely.
METRICS = {
  "plateau": [1.0, 0.8, 0.65, 0.55, 0.5, 0.48, 0.47, 0.47, 0.468, 0.47, 0.469, 0.47] + [0.47] * 12,
  "noisy": [round(float(v), 6) for v in _NOISY],
  "constant": [1.0] * 16,
  # 0.84 is exactly 0.85 - 0.01 in float64, and below it in float32.
  "tie": [0.85, 0.84, 0.84, 0.845, 0.84, 0.84],
  "accuracy": [0.1, 0.3, 0.5, 0.6, 0.65, 0.66, 0.66, 0.665, 0.66, 0.66, 0.67, 0.66] + [0.66] * 6,
  "improving": [1.0, 0.9, 0.8, 0.7, 0.6, 0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.5, 0.45]
  + [0.4, 0.35, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3],
  "improve_in_cooldown": [1.0, 1.0, 0.5, 0.7, 0.7, 0.7, 0.7],
}

OPTAX = [
  ("plateau", dict(factor=0.5, patience=3)),
  ("noisy", dict(factor=0.5, patience=2, cooldown=1, accumulation_size=3)),
  ("noisy", dict(factor=0.7, patience=2, rtol=0.01, atol=0.005, min_scale=0.2)),
  ("constant", dict(factor=0.5, patience=2)),
  ("constant", dict(factor=0.5, patience=2, cooldown=2, min_scale=0.2)),
  ("tie", dict(factor=0.5, patience=1, rtol=0.0, atol=0.01)),
]

# (metrics, warmup steps W, start factor of the warmup, ReduceLROnPlateau's arguments)
TORCH = [
  ("plateau", 5, 0.1, dict(factor=0.5, patience=2)),
  ("noisy", 10, 0.1, dict(factor=0.5, patience=3, cooldown=2)),
  ("constant", 0, 0.1, dict(factor=0.5, patience=0)),
  ("constant", 3, 0.25, dict(factor=0.5, patience=2, min_lr=0.02)),
  ("tie", 0, 0.1, dict(factor=0.5, patience=0, threshold=0.01, threshold_mode="abs")),
  ("accuracy", 2, 0.1, dict(mode="max", factor=0.5, patience=1, threshold=0.01)),
]
TORCH_LR = 0.1

KERAS = [
  ("plateau", dict(factor=0.5, patience=3, min_delta=1e-4)),
  ("constant", dict(factor=0.5, patience=2, min_delta=1e-4)),
  ("constant", dict(factor=0.5, patience=2, cooldown=3, min_delta=1e-4, min_lr=0.01)),
  ("tie", dict(factor=0.5, patience=1, min_delta=0.01)),
  ("accuracy", dict(mode="max", factor=0.5, patience=2, min_delta=0.0)),
]
KERAS_LR = 0.1

GREEDY = [
  ("improving", dict(factor=0.5, patience=1, min_lr=1e-3, max_lr=1.0)),
  ("noisy", dict(factor=0.8, patience=2, min_lr=0.01, max_lr=0.4, smooth=True, window_size=5)),
  ("accuracy", dict(mode="max", factor=0.5, patience=1, threshold=0.01, threshold_mode="rel")),
  # The best value does not follow the metric during GreedyLR's cooldown; lrjax's does.
  ("improve_in_cooldown", dict(factor=0.5, patience=0, cooldown=1, min_lr=1e-3, max_lr=0.1)),
]
GREEDY_LR = 0.1


def optax_cases() -> list[dict]:
  import jax.numpy as jnp
  import optax

  cases = []
  for i, (seq, settings) in enumerate(OPTAX):
    tx = optax.chain(optax.sgd(1.0), optax.contrib.reduce_on_plateau(**settings))
    params = jnp.zeros(())
    state, values = tx.init(params), []
    for metric in METRICS[seq]:
      update, state = tx.update(jnp.ones(()), state, params, value=metric)
      values.append(float(-update))
    case = {"id": f"optax_{seq}_{i}", "peer": "optax", "settings": settings}
    cases.append({**case, "metrics": METRICS[seq], "values": values})
  return cases


def torch_cases() -> list[dict]:
  import torch

  cases = []
  for i, (seq, warmup, start, settings) in enumerate(TORCH):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=TORCH_LR)
    if warmup:
      ramp = torch.optim.lr_scheduler.LinearLR(opt, start_factor=start, total_iters=warmup)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **settings)
    used, after = [], []
    for t, metric in enumerate(METRICS[seq]):
      used.append(opt.param_groups[0]["lr"])
      opt.step()
      if t < warmup:
        ramp.step()
      else:
        plateau.step(metric)
      after.append(opt.param_groups[0]["lr"])
    case = {"id": f"torch_{seq}_{i}", "peer": "torch_warmup", "lr": TORCH_LR}
    case |= {"warmup_steps": warmup, "start_factor": start, "settings": settings}
    cases.append({**case, "metrics": METRICS[seq], "lr_used": used, "values": after})
  return cases


def keras_cases() -> list[dict]:
  os.environ.setdefault("KERAS_BACKEND", "jax")
  import keras

  cases = []
  for i, (seq, settings) in enumerate(KERAS):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=KERAS_LR), loss="mse")
    callback = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", **settings)
    callback.set_model(model)
    callback.on_train_begin()
    values = []
    for epoch, metric in enumerate(METRICS[seq]):
      callback.on_epoch_end(epoch, {"val_loss": metric})
      values.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    case = {"id": f"keras_{seq}_{i}", "peer": "keras", "lr": KERAS_LR, "settings": settings}
    cases.append({**case, "metrics": METRICS[seq], "values": values})
  return cases


def greedy_cases() -> list[dict]:
  import torch
  from transformers.optimization import GreedyLR

  cases = []
  for i, (seq, settings) in enumerate(GREEDY):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=GREEDY_LR)
    scheduler = GreedyLR(opt, **settings)
    values = []
    for metric in METRICS[seq]:
      opt.step()
      scheduler.step(metric)
      values.append(opt.param_groups[0]["lr"])
    case = {"id": f"greedylr_{seq}_{i}", "peer": "greedylr", "lr": GREEDY_LR}
    case |= {"settings": settings, "defaults": _greedy_defaults(GreedyLR)}
    cases.append({**case, "metrics": METRICS[seq], "values": values})
  return cases


def _greedy_defaults(cls: type) -> dict:
  """GreedyLR's defaults, recorded beside the settings: the test converts them too."""
  import inspect

  skip = {"self", "optimizer", "verbose"}
  params = inspect.signature(cls.__init__).parameters
  return {k: p.default for k, p in params.items() if k not in skip}


def main() -> None:
  cases = optax_cases() + torch_cases() + keras_cases() + greedy_cases()
  common.write("plateau", ("torch", "optax", "jax", "keras", "transformers"), cases)


if __name__ == "__main__":
  main()
