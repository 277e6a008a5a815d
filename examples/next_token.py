"""Warmup-stable-decay against cosine on a task that is not image classification: next-token
prediction on a generated language, with a Flax NNX model and a plain optax loop of your own.

The language is an order-2 Markov chain over 16 symbols whose transition table is fixed (the
same for every seed and arm); the model reads the last 8 symbols and predicts the next one. Its
training function follows `lrjax.function`'s contract: everything random derives from
`job.seed`, the learning rate is `job.schedule`, state is saved in `job.folder` after every
epoch, and a preempted run stops there to be resumed.

  python examples/next_token.py --workdir runs/next_token   # 3 arms x 3 seeds, about a minute
"""

from __future__ import annotations

import argparse
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

VOCAB, CONTEXT = 16, 8


def language(n: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
  """`n` (context, next symbol) pairs from stream `stream` of the fixed language."""
  table = np.random.default_rng(0).dirichlet(np.full(VOCAB, 0.2), size=(VOCAB, VOCAB))
  rng = np.random.default_rng(100 + stream)
  text = list(rng.integers(0, VOCAB, 2))
  u = rng.uniform(size=n + CONTEXT)
  cdf = np.cumsum(table, axis=-1)
  for r in u:
    text.append(int(np.searchsorted(cdf[text[-2], text[-1]], r * cdf[text[-2], text[-1], -1])))
  text = np.asarray(text[2:], np.int32)
  windows = np.lib.stride_tricks.sliding_window_view(text, CONTEXT + 1)[:n]
  return windows[:, :CONTEXT], windows[:, CONTEXT]


class NextToken(nnx.Module):
  def __init__(self, width: int, rngs: nnx.Rngs):
    self.embed = nnx.Embed(VOCAB, 16, rngs=rngs)
    self.hidden = nnx.Linear(CONTEXT * 16, width, rngs=rngs)
    self.out = nnx.Linear(width, VOCAB, rngs=rngs)

  def __call__(self, x):
    h = self.embed(x).reshape((x.shape[0], -1))
    return self.out(nnx.relu(self.hidden(h)))


def _loss(model, x, y):
  logits = model(x)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
  return loss, jnp.mean(jnp.argmax(logits, -1) == y)


@nnx.jit
def _train_step(model, optimizer, x, y):
  (loss, _), grads = nnx.value_and_grad(_loss, has_aux=True)(model, x, y)
  optimizer.update(model, grads)
  return loss


@nnx.jit
def _scores(model, x, y):
  return _loss(model, x, y)


def train(job):
  """One run: `lrjax.function`'s contract (see the module docstring)."""
  user = job.config.user
  # One pass over a stream as long as the run (no window seen twice), as a language model trains.
  x, y = language(job.total_steps * user.batch_size, stream=0)
  order = np.random.default_rng(job.seed).permutation(len(x))
  splits = {"validation": language(user.eval_size, 1), "test": language(user.eval_size, 2)}
  model = NextToken(user.width, nnx.Rngs(job.seed))
  optimizer = nnx.Optimizer(model, optax.adamw(job.schedule, weight_decay=1e-4), wrt=nnx.Param)
  path, start, curves = os.path.join(job.folder, "state.pkl"), 0, []
  if os.path.exists(path):  # resume where the last saved epoch ended
    with open(path, "rb") as f:
      saved = pickle.load(f)
    nnx.update((model, optimizer), saved["state"])
    start, curves = saved["epoch"], saved["curves"]
  for epoch in range(start, job.num_epochs):
    losses = []
    for i in range(epoch * job.steps_per_epoch, (epoch + 1) * job.steps_per_epoch):
      idx = order[i * user.batch_size : (i + 1) * user.batch_size]
      losses.append(_train_step(model, optimizer, x[idx], y[idx]))
    row = {"epoch": epoch + 1, "train_loss": float(np.mean(jax.device_get(losses)))}
    for split, (sx, sy) in splits.items():
      loss, accuracy = _scores(model, sx, sy)
      row |= {f"{split}_loss": float(loss), f"{split}_accuracy": float(accuracy)}
    curves.append(row)
    state = jax.device_get(nnx.state((model, optimizer)))
    with open(path + ".tmp", "wb") as f:
      pickle.dump({"state": state, "epoch": epoch + 1, "curves": curves}, f)
    os.replace(path + ".tmp", path)  # a kill mid-write leaves the last whole state
    if job.preempted():
      job.stop((epoch + 1) * job.steps_per_epoch)
  if not np.isfinite(curves[-1]["train_loss"]):
    return {"diverged": job.total_steps}
  return {k: v for k, v in curves[-1].items() if k != "epoch"} | {"curves": curves}


PEAK = 1e-2
ARMS = {
  "cosine": {
    "name": "warmup_cosine_decay",
    "init_value": 0.0,
    "peak_value": PEAK,
    "warmup_steps": {"fraction": 0.1},
    "decay_steps": {"fraction": 1.0},
  },
  "wsd_1sqrt": {
    "name": "warmup_stable_decay",
    "peak_value": PEAK,
    "warmup_steps": {"fraction": 0.1},
    "stable_steps": {"fraction": 0.7},
    "decay_steps": {"fraction": 0.2},
    "decay_shape": "1-sqrt",
  },
  "constant": {"name": "constant", "value": PEAK},
}


def main(argv=None) -> dict:
  from lrjax.compare.api import function_study

  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", default="runs/next_token")
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--epochs", type=int, default=8)
  p.add_argument("--steps_per_epoch", type=int, default=100)
  p.add_argument("--eval_size", type=int, default=4096)
  ns = p.parse_args(argv)
  from lrjax import runtime

  # This script is its process's entry point: set the process up once, with a study's default
  # runtime (one thread per run), as `lrjax compare` does.
  runtime.setup({"threads": 1})
  # By its module's name, not `__main__`'s: the report names it, and executors' workers import
  # it (put examples/ on their PYTHONPATH).
  return function_study(
    "next_token:train",
    ns.workdir,
    schedules=ARMS,
    order=["cosine", "wsd_1sqrt", "constant"],
    seeds=range(ns.seeds),
    num_epochs=ns.epochs,
    steps_per_epoch=ns.steps_per_epoch,
    user={"batch_size": 64, "width": 128, "eval_size": ns.eval_size},
  )


if __name__ == "__main__":
  main()
