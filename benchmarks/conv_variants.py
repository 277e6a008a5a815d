"""Other ways to compute a 3x3 convolution layer on XLA's CPU backend, against lax.conv.

    python benchmarks/conv_variants.py     # under a minute; writes conv_variants.{json,md}

The ResNet-20 layer shapes at batch 128 (32x32x16, 16x16x32, 8x8x64), forward plus both
gradients (the train step's work), each variant jitted and timed in one process:
- `lax.conv`: what Flax's `nn.Conv` lowers to;
- im2col: `conv_general_dilated_patches` then one matrix product;
- shifted slices: the nine shifted views concatenated, then one matrix product;
- and the weight gradient alone, by lax.conv's transpose and as nine einsums over shifted views;
- and, when PyTorch is installed, its channels-last `conv2d` (oneDNN) on the same work.
The same maths each time (checked against lax.conv); only the implementation differs. Under the
default runtime of `lrjax`'s command line (`lrjax.runtime.setup()`: its XLA:CPU settings), as
the train step has them.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from timing import median_ms, write_outputs

from lrjax import runtime

DIMS = ("NHWC", "HWIO", "NHWC")
SHAPES = ((32, 16), (16, 32), (8, 64))


def conv(x, w):
  return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DIMS)


def conv_im2col(x, w):
  kh, kw, ci, co = w.shape
  p = jax.lax.conv_general_dilated_patches(x, (kh, kw), (1, 1), "SAME", dimension_numbers=DIMS)
  return p @ jnp.transpose(w, (2, 0, 1, 3)).reshape(ci * kh * kw, co)  # patches are (c, h, w)


def _shifted(x):
  h, w = x.shape[1], x.shape[2]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return [xp[:, i : i + h, j : j + w, :] for i in range(3) for j in range(3)]


def conv_shifted(x, w):
  return jnp.concatenate(_shifted(x), axis=-1) @ w.reshape(-1, w.shape[-1])


def weight_grad_einsum(x, dy):
  views = _shifted(x)
  return jnp.stack([jnp.einsum("nhwc,nhwd->cd", v, dy) for v in views]).reshape(
    3, 3, x.shape[-1], dy.shape[-1]
  )


def _ms(fn, *args) -> float:
  return median_ms(jax.jit(fn, compiler_options=runtime.setup().compiler_options()), *args, n=10)


def _train_work(f):
  return jax.grad(lambda x, w: jnp.sum(jnp.square(f(x, w))), argnums=(0, 1))


def _torch_ms(x: np.ndarray, w: np.ndarray, n: int = 10) -> float | None:
  """PyTorch's forward + both gradients of the same layer, channels last; None without torch."""
  try:
    import torch
  except ImportError:
    return None
  torch.set_num_threads(os.cpu_count() or 1)
  xt = torch.tensor(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
  wt = torch.tensor(w).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
  xt.requires_grad_(True)
  wt.requires_grad_(True)

  def work():
    torch.nn.functional.conv2d(xt, wt, padding=1).square().sum().backward()

  return median_ms(work, n=n)


def measure(batch: int = 128) -> list[dict]:
  rng = np.random.default_rng(0)
  rows = []
  for size, c in SHAPES:
    x = jnp.asarray(rng.standard_normal((batch, size, size, c)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3, c, c)) * 0.1, jnp.float32)
    dy = conv(x, w)
    for f in (conv_im2col, conv_shifted):
      np.testing.assert_allclose(f(x, w), dy, rtol=1e-3, atol=1e-3)
    ref_dw = jax.vjp(conv, x, w)[1](dy)[1]
    np.testing.assert_allclose(weight_grad_einsum(x, dy), ref_dw, rtol=2e-3, atol=0.1)
    base = _ms(_train_work(conv), x, w)
    dw = _ms(lambda d, x=x, w=w: jax.vjp(conv, x, w)[1](d)[1], dy)
    rows.append(
      {
        "layer": f"{size}x{size}x{c}",
        "lax_conv_ms": base,
        "im2col_ratio": _ms(_train_work(conv_im2col), x, w) / base,
        "shifted_ratio": _ms(_train_work(conv_shifted), x, w) / base,
        "weight_grad_ms": dw,
        "weight_grad_einsum_ratio": _ms(weight_grad_einsum, x, dy) / dw,
        "torch_ms": _torch_ms(np.asarray(x), np.asarray(w)),
      }
    )
  return rows


def markdown(rows: list[dict]) -> str:
  lines = [
    "| layer, batch 128, forward + both gradients | lax.conv | im2col / lax.conv "
    "| shifted slices / lax.conv | weight gradient: lax.conv | nine einsums / lax.conv "
    "| PyTorch conv2d, channels last |",
    "|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    torch_ms = "not installed" if r["torch_ms"] is None else f"{r['torch_ms']:.1f} ms"
    lines.append(
      f"| {r['layer']} | {r['lax_conv_ms']:.1f} ms | {r['im2col_ratio']:.1f} | "
      f"{r['shifted_ratio']:.1f} | {r['weight_grad_ms']:.1f} ms | "
      f"{r['weight_grad_einsum_ratio']:.2f} | {torch_ms} |"
    )
  return "\n".join(lines) + "\n"


def main() -> None:
  runtime.setup()  # before the first JAX computation
  rows = measure()
  write_outputs("conv_variants", rows, markdown(rows))


if __name__ == "__main__":
  main()
