"""Training throughput of lrjax's jitted step against PyTorch on the same architecture.

The same network (ResNet-20 of He et al. with option-A shortcuts, or lrjax's ConvNet), SGD with
momentum 0.9 and weight decay 5e-4, batch 128, measured in one process. PyTorch is an optional
dependency (`pip install torch`); without it this part is skipped with a message.
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np
from timing import build_run
from training import bench_config, step_time


def torch_models(torch):
  nn, F = torch.nn, torch.nn.functional

  class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
      super().__init__()
      self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
      self.b1 = nn.BatchNorm2d(cout)
      self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
      self.b2 = nn.BatchNorm2d(cout)
      self.stride, self.extra = stride, cout - cin

    def forward(self, x):
      y = F.relu(self.b1(self.c1(x)))
      y = self.b2(self.c2(y))
      s = x[:, :, :: self.stride, :: self.stride]
      if self.extra:
        s = F.pad(s, (0, 0, 0, 0, 0, self.extra))  # option A: zero channels, no parameters
      return F.relu(y + s)

  class ResNet20(nn.Module):
    def __init__(self, cin, classes=10):
      super().__init__()
      self.stem = nn.Sequential(nn.Conv2d(cin, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
      blocks, c = [], 16
      for i, width in enumerate((16, 32, 64)):
        for j in range(3):
          blocks.append(Basic(c, width, 2 if i and not j else 1))
          c = width
      self.blocks = nn.Sequential(*blocks)
      self.fc = nn.Linear(64, classes)

    def forward(self, x):
      x = self.blocks(F.relu(self.stem(x)))
      return self.fc(x.mean((2, 3)))

  class ConvNet(nn.Module):
    def __init__(self, cin, classes=10, widths=(32, 64, 128)):
      super().__init__()
      layers, c = [], cin
      for i, w in enumerate(widths):
        if i:
          layers.append(nn.MaxPool2d(2))
        layers += [nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
      self.body = nn.Sequential(*layers)
      self.fc = nn.Linear(c, classes)

    def forward(self, x):
      return self.fc(self.body(x).mean((2, 3)))

  return {"resnet20": ResNet20, "convnet": ConvNet}


def _torch_images_per_second(model_name, shape, n, channels_last):
  import torch

  torch.manual_seed(0)
  torch.set_num_threads(os.cpu_count() or 1)
  h, w, c = shape
  model = torch_models(torch)[model_name](c)
  opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
  x = torch.randn(128, c, h, w)
  y = torch.randint(0, 10, (128,))
  if channels_last:
    model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)

  def step():
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()

  for _ in range(2):
    step()
  t = time.perf_counter()
  for _ in range(n):
    step()
  return 128 * n / (time.perf_counter() - t)


def measure(n: int = 5) -> dict:
  try:
    import torch  # noqa: F401
  except ImportError:
    return {"skipped": "PyTorch is not installed (pip install torch)"}
  out = {}
  for model, shape in (("resnet20", (32, 32, 3)), ("convnet", (28, 28, 1))):
    h, w, c = shape
    config = bench_config(model, f"synthetic:{h}x{w}x{c}:1024:128:10")
    config.weight_decay = 5e-4
    run = build_run(config)
    state = run.init_state()
    batch = run.train_batch(np.arange(1024), 0)
    dt, _ = step_time(run, state, batch, run.schedule, n)
    ours = 128 / dt
    nchw = _torch_images_per_second(model, shape, n, channels_last=False)
    nhwc = _torch_images_per_second(model, shape, n, channels_last=True)
    best = max(nchw, nhwc)
    out[f"{model} {h}x{w}x{c}"] = {
      "lrjax_images_per_second": ours,
      "torch_nchw_images_per_second": nchw,
      "torch_channels_last_images_per_second": nhwc,
      "lrjax_over_best_torch": ours / best,
    }
  out["jax_backend"] = jax.default_backend()
  return out
