"""`Convolution`: `lax.conv_general_dilated` with oneDNN's primitives on a CPU.

`Convolution(threads, bf16)` is a drop-in for flax's `nn.Conv(conv_general_dilated=...)`, and a
hashable value: a model that holds it compiles once per thread count. Convolutions it can run
(2-D, NHWC input, HWIO kernel, no dilation, one group, non-negative padding, float32, or bfloat16
where `bf16`) go to the oneDNN FFI handlers, forward and both gradients tied by
`jax.custom_vjp`, with oneDNN's thread count fixed to `threads` (its weight gradient's bits depend
on it); everything else is `lax.conv_general_dilated` itself. Which path a model gets is the
runtime's choice (`lrjax.runtime`), not this module's.

Under `jax.vmap` each handler loops over the mapped axis (a population of models: one
convolution per member, as XLA's grouped convolution would do, without its slow kernel). Under a
sharded `jit`, `custom_partitioning` keeps the batch axis split: each device convolves its own
shard, and the weight gradient is summed across the shards that split the batch.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lrjax.onednn import build, ops

_NHWC = ("NHWC", "HWIO", "NHWC")


class Geometry(NamedTuple):
  """Strides and (low, high) paddings of one convolution, and oneDNN's thread count; sizes come
  from the operands."""

  sh: int
  sw: int
  pt: int
  pb: int
  pl: int
  pr: int
  threads: int = 1

  def attrs(self) -> dict[str, np.int64]:
    return {k: np.int64(v) for k, v in self._asdict().items()}


def _out_hw(x_shape, w_shape, g: Geometry) -> tuple[int, int]:
  return (
    (x_shape[-3] + g.pt + g.pb - w_shape[-4]) // g.sh + 1,
    (x_shape[-2] + g.pl + g.pr - w_shape[-3]) // g.sw + 1,
  )


def _forward(x, w, g: Geometry):
  return ops.call(ops.FWD, x, w, g, _out_hw(x.shape, w.shape, g))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(x: jax.Array, w: jax.Array, g: Geometry) -> jax.Array:
  return _forward(x, w, g)


def _conv_fwd(x, w, g):
  return _forward(x, w, g), (x, w)


def _conv_bwd(g, res, dy):
  x, w = res
  dy = dy.astype(x.dtype)
  return (
    ops.call(ops.BWD_DATA, dy, w, g, x.shape[-3:-1]),
    ops.call(ops.BWD_WEIGHTS, x, dy, g, w.shape[-4:-2]),
  )


_conv.defvjp(_conv_fwd, _conv_bwd)


def geometry(
  lhs_shape,
  rhs_shape,
  window_strides,
  padding,
  lhs_dilation,
  rhs_dilation,
  dimension_numbers,
  threads: int = 1,
) -> Geometry | None:
  """The `Geometry` of a convolution the handlers run, or None (then XLA's convolution)."""
  if len(lhs_shape) != 4 or len(rhs_shape) != 4 or len(window_strides) != 2:
    return None
  if dimension_numbers is None:
    return None
  want = lax.conv_dimension_numbers(lhs_shape, rhs_shape, _NHWC)
  if lax.conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers) != want:
    return None
  if any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ()))):
    return None
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(lhs_shape[1:3], rhs_shape[:2], window_strides, padding)
  (pt, pb), (pl, pr) = (tuple(p) for p in padding)
  g = Geometry(*(int(v) for v in (*window_strides, pt, pb, pl, pr)), threads=int(threads))
  if min(g) < 0 or min(g.sh, g.sw) < 1 or min(_out_hw(lhs_shape, rhs_shape, g)) < 1:
    return None
  if lhs_shape[3] != rhs_shape[2]:
    return None
  return g


@dataclasses.dataclass(frozen=True)
class Convolution:
  """`lax.conv_general_dilated` through oneDNN where it can (see the module docstring).

  Attributes:
    threads: oneDNN's thread count, a positive integer.
    bf16: whether bfloat16 convolutions go through oneDNN too (where the CPU has them).
  """

  threads: int = 1
  bf16: bool = False

  def __post_init__(self):
    if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
      raise ValueError(f"threads must be a positive integer, got {self.threads!r}")

  def __call__(
    self,
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: Any = None,
    preferred_element_type: Any = None,
  ) -> jax.Array:
    args = (lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers)
    g = geometry(lhs.shape, rhs.shape, *args[2:], threads=self.threads)
    dtype = jnp.result_type(lhs)
    if (
      g is not None
      and feature_group_count == 1
      and batch_group_count == 1
      and rhs.dtype == dtype
      and preferred_element_type in (None, dtype)
      and (dtype == jnp.float32 or (dtype == jnp.bfloat16 and self.bf16))
    ):
      _registered()
      return _conv(lhs, rhs, g)
    return lax.conv_general_dilated(
      *args,
      feature_group_count=feature_group_count,
      batch_group_count=batch_group_count,
      precision=precision,
      preferred_element_type=preferred_element_type,
    )


def _registered() -> None:
  """The handlers are registered (`build.load`, by `lrjax.runtime.setup`), or a one-line error
  says why not: tracing a step never builds them."""
  lib = build.loaded()
  if lib is None:
    raise RuntimeError(
      "oneDNN convolutions are loaded by lrjax.runtime.setup, which this process has not run "
      "with them: call lrjax.runtime.setup() first"
    )
  if isinstance(lib, build.Unavailable):
    raise RuntimeError(f"oneDNN convolutions are not available here: {lib.reason}")
