"""Convolutions through oneDNN against XLA's and PyTorch's, per layer and for the whole train step.

    python benchmarks/onednn_layers.py [rounds [processes]]  # 6 minutes; onednn_layers.{json,md}
    python benchmarks/onednn_layers.py --markdown            # the .md again from the .json

Per layer: every convolution shape of ResNet-20 (32x32x3) and the ConvNet (28x28x1) at batch
128, each of forward, input gradient and weight gradient, by XLA (`lax.conv_general_dilated`,
jitted with lrjax's CPU options), by `lrjax.onednn`, and by PyTorch channels-last when it is
installed, side by side in this process: medians of rounds that alternate the order of the
contenders, since this machine's timings drift. Whole step: lrjax's jitted train step on each
path against PyTorch's eager step (SGD momentum, weight decay 5e-4), in images/s after a
warm-up, each contender in several fresh processes taken in alternating order (the median and
the range over processes), with the transposes and copies of each compiled step (the oneDNN
path should add none). Every process sets up lrjax's default runtime first
(`lrjax.runtime.setup()`: its XLA:CPU and memory settings, oneDNN's thread count), PyTorch's
included; a model takes its convolution path from the runtime (`config.runtime.convolutions`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

from lrjax import runtime

RUNTIME = runtime.setup()  # before JAX starts its backends, as every lrjax entry point

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from timing import HERE, build_run, in_fresh_processes, median_and_range, write_outputs  # noqa: E402
from torch_compare import torch_models  # noqa: E402
from training import bench_config  # noqa: E402

from lrjax.onednn import conv as onednn_conv  # noqa: E402
from lrjax.onednn import ops  # noqa: E402

BATCH = 128
DIMS = ("NHWC", "HWIO", "NHWC")
# (model, input size, in channels, out channels, kernel, stride): each distinct layer once.
LAYERS = (
  ("resnet20", 32, 3, 16, 3, 1),
  ("resnet20", 32, 16, 16, 3, 1),
  ("resnet20", 32, 16, 32, 3, 2),
  ("resnet20", 16, 32, 32, 3, 1),
  ("resnet20", 16, 32, 64, 3, 2),
  ("resnet20", 8, 64, 64, 3, 1),
  ("convnet", 28, 1, 32, 3, 1),
  ("convnet", 14, 32, 64, 3, 1),
  ("convnet", 7, 64, 128, 3, 1),
)
WORK = ("forward", "input grad", "weight grad")


def _median_of_rounds(fns: dict, rounds: int, calls: int) -> dict[str, float]:
  """Median seconds per call of each fn, over rounds alternating their order."""
  times = {k: [] for k in fns}
  items = list(fns.items())
  for r in range(rounds):
    for name, fn in items if r % 2 else items[::-1]:
      t = time.perf_counter()
      for _ in range(calls):
        fn()
      times[name].append((time.perf_counter() - t) / calls)
  return {k: float(np.median(v)) for k, v in times.items()}


def _jax_fns(x, w, dy, g: onednn_conv.Geometry, stride: int):
  opts = RUNTIME.compiler_options()

  def lax_conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=DIMS)

  xla = (
    jax.jit(lax_conv, compiler_options=opts),
    jax.jit(lambda x, w, dy: jax.vjp(lambda x: lax_conv(x, w), x)[1](dy)[0], compiler_options=opts),
    jax.jit(lambda x, w, dy: jax.vjp(lambda w: lax_conv(x, w), w)[1](dy)[0], compiler_options=opts),
  )
  hw = dy.shape[1:3]
  dnn = (
    jax.jit(lambda x, w: ops.call(ops.FWD, x, w, g, hw)),
    jax.jit(lambda x, w, dy: ops.call(ops.BWD_DATA, dy, w, g, x.shape[1:3])),
    jax.jit(lambda x, w, dy: ops.call(ops.BWD_WEIGHTS, x, dy, g, w.shape[:2])),
  )
  args = ((x, w), (x, w, dy), (x, w, dy))
  out = {}
  for work, fx, fo, a in zip(WORK, xla, dnn, args):
    np.testing.assert_allclose(fo(*a), fx(*a), rtol=2e-3, atol=2e-3 * float(jnp.abs(fx(*a)).max()))
    out[work] = {
      "xla": lambda f=fx, a=a: jax.block_until_ready(f(*a)),
      "onednn": lambda f=fo, a=a: jax.block_until_ready(f(*a)),
    }
  return out


def _torch_fns(torch, size, cin, cout, k, stride):
  x = torch.randn(BATCH, cin, size, size).to(memory_format=torch.channels_last)
  w = torch.randn(cout, cin, k, k).to(memory_format=torch.channels_last)
  pad = k // 2
  y = torch.nn.functional.conv2d(x, w, None, stride, pad)
  dy = torch.randn_like(y).to(memory_format=torch.channels_last)

  def backward(mask):
    return lambda: torch.ops.aten.convolution_backward(
      dy, x, w, None, [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], 1, mask
    )

  return {
    "forward": lambda: torch.nn.functional.conv2d(x, w, None, stride, pad),
    "input grad": backward([True, False, False]),
    "weight grad": backward([False, True, False]),
  }


def layers(rounds: int, torch) -> list[dict]:
  rng = np.random.default_rng(0)
  rows = []
  for model, size, cin, cout, k, stride in LAYERS:
    x = jnp.asarray(rng.standard_normal((BATCH, size, size, cin)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, cin, cout)), jnp.float32)
    g = onednn_conv.geometry(
      x.shape, w.shape, (stride,) * 2, "SAME", None, None, DIMS, threads=RUNTIME.threads
    )
    out = -(-size // stride)
    dy = jnp.asarray(rng.standard_normal((BATCH, out, out, cout)), jnp.float32)
    fns = _jax_fns(x, w, dy, g, stride)
    if torch is not None:
      for work, fn in _torch_fns(torch, size, cin, cout, k, stride).items():
        fns[work]["torch channels-last"] = fn
    for work in WORK:
      for fn in fns[work].values():
        fn()
      ms = {name: 1e3 * s for name, s in _median_of_rounds(fns[work], rounds, 5).items()}
      row = {"model": model, "layer": f"{size}x{size}x{cin}->{cout} k{k} s{stride}", "work": work}
      rows.append({**row, "ms": ms})
      print(rows[-1], flush=True)
  return rows


def _warm_up(step, calls: int = 30) -> None:
  # A run's steady state: the heap reaches its peak over the first steps (and with `tune()`'s
  # malloc setting stays there), so the early steps pay page faults a long run does not.
  for _ in range(calls):
    step()


def _compiled_step(model: str, shape, xla: bool):
  h, w, c = shape
  config = bench_config(model, f"synthetic:{h}x{w}x{c}:1024:{BATCH}:10")
  config.weight_decay = 5e-4
  config.runtime.convolutions = "xla" if xla else "onednn"
  run = build_run(config)
  state, batch = run.init_state(), run.train_batch(np.arange(1024), 0)
  compiled = run.train_step.lower(state, batch, run.schedule).compile()
  hlo = compiled.as_text()
  counts = {op: len(re.findall(rf" {op}\(", hlo)) for op in ("transpose", "copy", "convolution")}
  counts["onednn calls"] = hlo.count('custom_call_target="lrjax_onednn')
  holder = [state]

  def step():
    holder[0], metrics = compiled(holder[0], batch, run.schedule)
    jax.block_until_ready(metrics)

  return step, counts


def _torch_step(torch, model: str, shape):
  h, w, c = shape
  torch.manual_seed(0)
  net = torch_models(torch)[model](c).to(memory_format=torch.channels_last)
  opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
  x = torch.randn(BATCH, c, h, w).to(memory_format=torch.channels_last)
  y = torch.randint(0, 10, (BATCH,))

  def step():
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()

  return step


MODELS = (("resnet20", (32, 32, 3)), ("convnet", (28, 28, 1)))


def step_images_per_second(model: str, contender: str, rounds: int) -> float:
  """One contender's train step in this process, after its warm-up: median images/s."""
  shape = dict(MODELS)[model]
  if contender == "torch channels-last":
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    step = _torch_step(torch, model, shape)
  else:
    step = _compiled_step(model, shape, xla=contender == "xla")[0]
  _warm_up(step)
  return BATCH / _median_of_rounds({contender: step}, rounds, 2)[contender]


def train_steps(rounds: int, torch, processes: int) -> list[dict]:
  """Each contender's step in `processes` fresh processes, alternating: a process's figure is
  steady within it, but varies from one process to the next (thread placement, the heap's
  layout), by up to a third for the oneDNN ConvNet step, so one process is not enough."""
  names = ["xla", "onednn"] + (["torch channels-last"] if torch is not None else [])
  rows = []
  for model, shape in MODELS:
    counts = {k: _compiled_step(model, shape, xla=k == "xla")[1] for k in ("xla", "onednn")}
    step = [os.path.abspath(__file__), "--step", model]
    ips = in_fresh_processes([(n, [*step, n, str(rounds)], None) for n in names], processes)
    row = {
      "model": model,
      "images_per_second": {n: float(np.median(v)) for n, v in ips.items()},
      "per_process": ips,
      "hlo": counts,
    }
    rows.append(row)
    print(row, flush=True)
  return rows


def markdown(result: dict) -> str:
  names = ["xla", "onednn"] + (["torch channels-last"] if result["torch"] else [])
  lines = [
    f"{result['path']}; jax {jax.__version__}, {os.cpu_count()} CPUs, batch {BATCH}, "
    f"medians of {result['rounds']} alternating rounds; a train step: the median (and range) "
    f"over {result.get('processes', 1)} processes a contender.",
    "",
    "| model | images/s | " + " | ".join(names) + " | oneDNN / XLA | oneDNN / PyTorch |",
    "|---|---|" + "---|" * (len(names) + 2),
  ]
  for row in result["train_step"]:
    ips, each = row["images_per_second"], row["per_process"]
    vs_torch = f"{ips['onednn'] / ips[names[2]]:.2f}" if result["torch"] else "-"
    cells = " | ".join(median_and_range(each[n]) for n in names)
    lines.append(
      f"| {row['model']} | train step | {cells} | {ips['onednn'] / ips['xla']:.2f} | {vs_torch} |"
    )
  lines += [
    "",
    "Per layer, ms: forward / input gradient / weight gradient (training never computes the "
    "first layer's input gradient).",
    "",
    "| model | layer | " + " | ".join(names) + " |",
    "|---|---|" + "---|" * len(names),
  ]
  by_layer: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
  for row in result["layers"]:
    by_layer.setdefault((row["model"], row["layer"]), {})[row["work"]] = row["ms"]
  for (model, layer), works in by_layer.items():
    cells = " | ".join(" / ".join(f"{works[w][n]:.1f}" for w in WORK) for n in names)
    lines.append(f"| {model} | {layer} | {cells} |")
  lines += ["", "Compiled train step, op counts (XLA path / oneDNN path):", ""]
  for row in result["train_step"]:
    x, o = row["hlo"]["xla"], row["hlo"]["onednn"]
    counts = ", ".join(f"{k} {x[k]} / {o[k]}" for k in x)
    lines.append(f"- {row['model']}: {counts}")
  return "\n".join(lines) + "\n"


def main(rounds: int = 9, processes: int = 3) -> dict:
  if RUNTIME.convolutions != "onednn":
    sys.exit(f"the oneDNN path is off here: {RUNTIME.status()}")
  try:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
  except ImportError:
    torch = None
  result = {
    "path": RUNTIME.status(),
    "rounds": rounds,
    "processes": processes,
    "torch": torch is not None,
  }
  result["train_step"] = train_steps(rounds, torch, processes)
  result["layers"] = layers(rounds, torch)
  write_outputs("onednn_layers", result, markdown(result))
  return result


if __name__ == "__main__":
  if sys.argv[1:2] == ["--step"]:  # one contender, for train_steps
    print(step_images_per_second(sys.argv[2], sys.argv[3], int(sys.argv[4])))
  elif sys.argv[1:] == ["--markdown"]:  # rewrite the .md from the last run's .json
    with open(os.path.join(HERE, "onednn_layers.json")) as f:
      result = json.load(f)
    write_outputs("onednn_layers", result, markdown(result))
  else:
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
