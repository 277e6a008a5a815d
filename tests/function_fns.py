"""Training functions of a user's own, for the `config.study.train_fn` tests: logistic regression
in NumPy on data derived from the seed, checkpointed in the run's folder after every epoch."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np


def _data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(1000 + seed)
  x = rng.normal(size=(n, 8))
  y = (x @ np.linspace(-1, 1, 8) + 0.5 * rng.normal(size=n) > 0).astype(float)
  return x, y


def _scores(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
  p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
  loss = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
  return float(loss), float(np.mean((p > 0.5) == y))


def train(job):
  """Trains and returns final metrics and curves; resumes from `job.folder`; honours preemption
  and, for the tests, `config.user.fail` ("raise", "nan", "missing", "type") and `sleep`."""
  user = job.config.user
  fail = user.get("fail", "")
  if fail == "raise":
    raise ZeroDivisionError("the user's code divided by zero")
  if fail == "type":
    return [0.9]
  x, y = _data(0, 256)  # one dataset; the seed picks the initialisation and the order
  vx, vy = _data(1, 128)
  tx, ty = _data(2, 128)
  rng = np.random.default_rng(job.seed)
  w = rng.normal(scale=0.1, size=8)
  batch = len(x) // job.steps_per_epoch
  path = os.path.join(job.folder, "state.npz")
  start, curves = 0, []
  if os.path.exists(path):
    state = np.load(path)
    w, start, curves = state["w"], int(state["epoch"]), json.loads(str(state["curves"]))
  step = start * job.steps_per_epoch
  for epoch in range(start, job.num_epochs):
    order = np.random.default_rng([job.seed, epoch]).permutation(len(x))
    for i in range(job.steps_per_epoch):
      idx = order[i * batch : (i + 1) * batch]
      p = 1 / (1 + np.exp(-np.clip(x[idx] @ w, -30, 30)))
      w = w - float(job.schedule(step)) * x[idx].T @ (p - y[idx]) / len(idx)
      step += 1
      time.sleep(user.get("sleep", 0.0))
      if user.get("signal_at") == step:
        os.kill(os.getpid(), signal.SIGTERM)
    train_loss, train_acc = _scores(w, x, y)
    val_loss, val_acc = _scores(w, vx, vy)
    test_loss, test_acc = _scores(w, tx, ty)
    curves.append(
      {
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "train_accuracy": train_acc,
        "validation_loss": val_loss,
        "validation_accuracy": val_acc,
        "test_loss": test_loss,
        "test_accuracy": test_acc,
      }
    )
    # One file, written whole or not at all: a kill mid-write leaves the last epoch's state.
    tmp = os.path.join(job.folder, "state.tmp.npz")
    np.savez(tmp, w=w, epoch=epoch + 1, curves=json.dumps(curves))
    os.replace(tmp, path)
    if job.preempted():
      job.stop(step)
  if user.get("scramble_test"):  # test metrics unrelated to training: selection must not care
    rng = np.random.default_rng([job.seed, int(1e6 * float(job.schedule(0)))])
    for c in curves:
      c["test_accuracy"], c["test_loss"] = float(rng.uniform()), float(rng.uniform(0.1, 3))
  out = {k: v for k, v in curves[-1].items() if k != "epoch"}
  if fail == "nan":
    out["test_loss"] = float("nan")
  if fail == "missing":
    del out["test_accuracy"]
  return out | {"curves": curves}


def planted(job):
  """A response planted in a training function: validation accuracy falls off quadratically in
  log2(lr_scale) away from `config.user.best` (default 1), plus seed noise 20 times smaller than
  the step between neighbouring points; test accuracy is noise alone. Trains nothing."""
  best = job.config.user.get("best", 1.0)
  noise = np.random.default_rng([job.seed, 17]).normal(scale=0.0025)
  distance = np.log2(job.lr_scale / best)
  return {
    "validation_accuracy": float(0.9 - 0.05 * distance**2 + noise),
    "test_accuracy": float(0.5 + np.random.default_rng(job.seed).normal(scale=0.01)),
    "test_loss": 1.0,
  }
