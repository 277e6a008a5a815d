"""The accelerator benchmark: one prepared script, under 8 minutes on one GPU, without tfds.

    python benchmarks/gpu.py --data_dir DIR_WITH_FASHION_MNIST_IDX --out results_gpu.json
    python benchmarks/gpu.py --tiny      # a seconds-long dry run of every part, on any machine

Measures, in one process:
1. ResNet-50 (CIFAR stem) training images/s at batch 256 in float32 and bfloat16, and the model
   FLOP utilisation: images/s x 7.8 GFLOP per training image / the chip's peak bf16 FLOP/s;
2. K schedules trained as one vmapped program against K sequential steps (ResNet-20);
3. one real Fashion-MNIST epoch of `configs/fashion_mnist.py` through
   `lrjax.train.train_and_evaluate` (from the IDX files in --data_dir), with its test accuracy.
Configs are plain objects here, so the script needs jax, flax, optax and orbax only. On a machine
without the Debian package, copy the four Fashion-MNIST IDX files into a git-ignored folder of the
checkout (e.g. `.data/fashion-mnist`, 31 MB) and pass it as --data_dir.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time

import jax
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from timing import build_run  # noqa: E402

from lrjax import runtime  # noqa: E402
from lrjax.config import experiment  # noqa: E402
from lrjax.config.experiment import Experiment  # noqa: E402
from lrjax.train import train_and_evaluate  # noqa: E402

TRAIN_GFLOP_PER_IMAGE = {"resnet50": 7.8, "resnet20": 0.25, "tiny": 0.001}
# Dense bf16 peak FLOP/s by device kind (datasheet figures); MFU is reported against these.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12}


def config(model, dataset, batch, epochs=1, **changes) -> Experiment:
  """The benchmark's experiment, typed directly: the accelerator image has no ml_collections
  (which configs/default.py needs), and an `Experiment` is all the engine takes."""
  c = dict(
    model=model,
    stem="cifar",
    half_precision=False,
    dataset=dataset,
    data_dir="",
    train_split="train",
    test_split="test",
    validation_fraction=0.0,
    validation_split="",
    train_limit=0,
    augment=False,
    pad=4,
    flip=True,
    optimizer="sgd",
    momentum=0.9,
    nesterov=False,
    weight_decay=5e-4,
    batch_size=batch,
    num_epochs=epochs,
    schedule={"name": "linear_decay", "init_value": 0.1, "total_steps": {"fraction": 1.0}},
    seed=0,
    eval_batch_size=1000,
    checkpoint_every_epochs=100,
    checkpoint_every_steps=0,
    keep_checkpoints=1,
    log_every_steps=50,
    progress=False,
    tensorboard=False,
    snapshot_ensemble=False,
    bn_recompute_batches=8,
    runtime={},
    user={},
  )
  return experiment.parse({**c, **changes})


def _steps_per_second(run, state, batch, schedule, n):
  state, m = run.train_step(state, batch, schedule)
  jax.block_until_ready(m)
  t = time.perf_counter()
  for _ in range(n):
    state, m = run.train_step(state, batch, schedule)
  jax.block_until_ready(m)
  return n / (time.perf_counter() - t), state


def throughput(model, batch, n, half_precision) -> dict:
  dataset = f"synthetic:32x32x3:{batch * 2}:{batch}:10"
  run = build_run(config(model, dataset, batch, half_precision=half_precision))
  state = run.init_state()
  b = run.train_batch(np.arange(batch * 2), 0)
  t0 = time.perf_counter()
  _, state = _steps_per_second(run, state, b, run.schedule, 1)  # the state is donated
  compile_s = time.perf_counter() - t0
  rate, _ = _steps_per_second(run, state, b, run.schedule, n)
  images = rate * batch
  kind = jax.devices()[0].device_kind
  peak = next((v for k, v in PEAK_BF16.items() if k in kind), None)
  flops = images * TRAIN_GFLOP_PER_IMAGE.get(model, float("nan")) * 1e9
  return {
    "model": model,
    "batch": batch,
    "dtype": "bfloat16" if half_precision else "float32",
    "images_per_second": images,
    "train_tflops": flops / 1e12,
    "mfu_vs_bf16_peak": flops / peak if peak else None,
    "first_steps_seconds": compile_s,
  }


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data_dir", default="/usr/share/datasets/fashion-mnist")
  p.add_argument("--out", default=os.path.join(HERE, "results_gpu.json"))
  p.add_argument("--tiny", action="store_true", help="small models and few steps (a dry run)")
  args = p.parse_args()
  big, small, batch, n = ("tiny", "tiny", 32, 2) if args.tiny else ("resnet50", "resnet20", 256, 30)
  rt = runtime.setup()  # before any JAX computation, as every lrjax entry point
  out = {
    "date": datetime.date.today().isoformat(),
    "runtime": rt.record(),
    "jax": jax.__version__,
    "device": jax.devices()[0].device_kind,
    "devices": jax.device_count(),
  }
  for half in (False, True):
    print(f"throughput {big} half_precision={half} ...", flush=True)
    out[f"throughput_{'bf16' if half else 'fp32'}"] = throughput(big, batch, n, half)
  import training  # the population measurement shared with the CPU suite

  print("population ...", flush=True)
  out["population"] = training.population(
    model=small,
    k=4,
    n=max(2, n // 6),
    rounds=1 if args.tiny else 2,
    config=config(small, "synthetic:28x28x1:2048:256:10", 128),
  )
  print("one Fashion-MNIST epoch ...", flush=True)
  with tempfile.TemporaryDirectory() as tmp:
    c = config(
      "convnet" if not args.tiny else "tiny",
      "fashion_mnist",
      128,
      data_dir=args.data_dir,
      train_limit=1024 if args.tiny else 0,
    )
    t = time.perf_counter()
    summary = train_and_evaluate(c, tmp, quiet=True)
    out["fashion_mnist_epoch"] = {
      "model": c.model,
      "seconds_with_compile": time.perf_counter() - t,
      "train_seconds": summary["seconds"],
      "test_accuracy": summary["final_test_accuracy"],
    }
  with open(args.out, "w") as f:
    json.dump(out, f, indent=2)
  print(json.dumps(out, indent=2))


if __name__ == "__main__":
  main()
