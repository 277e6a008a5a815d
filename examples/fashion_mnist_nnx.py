"""The chapter's question with your own training loop: a plain optax + Flax NNX classifier on
Fashion-MNIST, compared across schedules by lrjax through `train_fn`.

lrjax owns the study (arms, paired seeds, the report, resume); this file owns the training: the
model, the optimizer, the loop and its checkpoints. 10% of the training images are held out for
validation (lrjax's fixed split, the same for every arm and seed); test images are only reported.

  python examples/fashion_mnist_nnx.py --workdir runs/fashion_mnist_nnx   # 7 arms x 3 seeds
"""

from __future__ import annotations

import argparse
import functools
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lrjax.configs.chapter_schedules import chapter_study
from lrjax.data.datasets import load_dataset
from lrjax.data.validation import hold_out_indices


@functools.cache
def splits(limit: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Train, validation and test arrays (images as float32 in [0, 1]), the first `limit` of each
  (0: all)."""
  data = load_dataset("fashion_mnist")
  train, held = hold_out_indices(len(data.train_labels), 0.1)
  out = {
    "train": (data.train_images[train], data.train_labels[train]),
    "validation": (data.train_images[held], data.train_labels[held]),
    "test": (data.test_images, data.test_labels),
  }
  cut = slice(None, limit or None)
  return {
    k: ((x[cut] / np.float32(255)).reshape(len(x[cut]), -1), y[cut]) for k, (x, y) in out.items()
  }


class MLP(nnx.Module):
  def __init__(self, width: int, rngs: nnx.Rngs):
    self.hidden = nnx.Linear(784, width, rngs=rngs)
    self.out = nnx.Linear(width, 10, rngs=rngs)

  def __call__(self, x):
    return self.out(nnx.relu(self.hidden(x)))


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
  """One run, by `lrjax.function`'s contract."""
  user = job.config.user
  data = splits(user.limit)
  x, y = data["train"]
  batch = len(x) // job.steps_per_epoch
  model = MLP(user.width, nnx.Rngs(job.seed))
  tx = optax.sgd(job.schedule, momentum=0.9)
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  path, start, curves = os.path.join(job.folder, "state.pkl"), 0, []
  if os.path.exists(path):
    with open(path, "rb") as f:
      saved = pickle.load(f)
    nnx.update((model, optimizer), saved["state"])
    start, curves = saved["epoch"], saved["curves"]
  for epoch in range(start, job.num_epochs):
    order = np.random.default_rng([job.seed, epoch]).permutation(len(x))
    losses = [
      _train_step(model, optimizer, x[idx], y[idx])
      for idx in np.split(order[: batch * job.steps_per_epoch], job.steps_per_epoch)
    ]
    row = {"epoch": epoch + 1, "train_loss": float(np.mean(jax.device_get(losses)))}
    for split in ("validation", "test"):
      loss, accuracy = _scores(model, *data[split])
      row |= {f"{split}_loss": float(loss), f"{split}_accuracy": float(accuracy)}
    curves.append(row)
    with open(path + ".tmp", "wb") as f:
      state = jax.device_get(nnx.state((model, optimizer)))
      pickle.dump({"state": state, "epoch": epoch + 1, "curves": curves}, f)
    os.replace(path + ".tmp", path)
    if job.preempted():
      job.stop((epoch + 1) * job.steps_per_epoch)
  if not np.isfinite(curves[-1]["train_loss"]):
    return {"diverged": job.total_steps}
  return {k: v for k, v in curves[-1].items() if k != "epoch"} | {"curves": curves}


def arms(epochs: int) -> dict:
  """The chapter's schedules at a peak of 0.05, over `epochs`."""
  return chapter_study(init_lr=0.05, num_epochs=epochs)


def main(argv=None) -> dict:
  from lrjax.compare.api import function_study

  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", default="runs/fashion_mnist_nnx")
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--epochs", type=int, default=4)
  p.add_argument("--batch_size", type=int, default=128)
  p.add_argument("--limit", type=int, default=0, help="examples of each split (0: all)")
  ns = p.parse_args(argv)
  from lrjax import runtime

  # This script is its process's entry point: set the process up once, with a study's default
  # runtime (one thread per run), as `lrjax compare` does.
  runtime.setup({"threads": 1})
  train_size = len(splits(ns.limit)["train"][1])
  # By its module's name, not `__main__`'s: the report names it, and executors' workers import
  # it (put examples/ on their PYTHONPATH).
  return function_study(
    "fashion_mnist_nnx:train",
    ns.workdir,
    schedules=arms(ns.epochs),
    order=list(arms(ns.epochs)),
    seeds=range(ns.seeds),
    num_epochs=ns.epochs,
    steps_per_epoch=train_size // ns.batch_size,
    user={"width": 256, "limit": ns.limit},
  )


if __name__ == "__main__":
  main()
