"""The three oneDNN calls of a convolution, each made batchable and partitionable.

An FFI call is opaque to XLA's partitioner, which would gather a batch-sharded operand onto every
device. `custom_partitioning` says instead how each call splits: along the leading (vmapped)
axes and the image batch axis N, with the spatial and channel axes whole on each device; the
weight gradient, a sum over N, is then summed across the devices that split N (one `psum`).

`custom_partitioning` has no vmap rule, so each call is wrapped in `custom_vmap`, whose rule
moves the mapped axis in front (broadcasting an unmapped operand, a small kernel in practice) and
calls the same op at one rank more: the handler loops over leading axes.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

TARGETS = ("lrjax_onednn_conv_fwd", "lrjax_onednn_conv_bwd_data", "lrjax_onednn_conv_bwd_weights")
FWD, BWD_DATA, BWD_WEIGHTS = range(3)
# Factors of the three calls' operands and result (Shardy's einsum-like rules): n images, h w c
# the input's spatial size and channels, i j o the output's, p q the kernel's spatial size.
_RULES = (
  "... n h w c, ... p q c o -> ... n i j o",
  "... n i j o, ... p q c o -> ... n h w c",
  "... n h w c, ... n i j o -> ... p q c o",
)


def _out_shape(kind: int, a_shape, b_shape, g, out_hw) -> tuple[int, ...]:
  lead = a_shape[:-4]
  if kind == FWD:
    return (*lead, a_shape[-4], *out_hw, b_shape[-1])
  if kind == BWD_DATA:
    return (*lead, a_shape[-4], *out_hw, b_shape[-2])
  return (*lead, *out_hw, a_shape[-1], b_shape[-1])


def _ffi(kind: int, g, out_hw, a: jax.Array, b: jax.Array) -> jax.Array:
  out = jax.ShapeDtypeStruct(_out_shape(kind, a.shape, b.shape, g, out_hw), a.dtype)
  return jax.ffi.ffi_call(TARGETS[kind], out)(a, b, **g.attrs())


def _specs(kind: int, mesh, a_sharding, rank: int):
  """Operand and result shardings: `a`'s split of the leading and N axes, the rest whole."""
  spec = tuple(a_sharding.spec) + (None,) * (rank - len(a_sharding.spec))
  lead, n = spec[: rank - 4], spec[rank - 4]
  split = P(*lead, n, None, None, None)
  whole = P(*lead, None, None, None, None)
  b_spec = split if kind == BWD_WEIGHTS else whole
  out_spec = whole if kind == BWD_WEIGHTS else split
  return n, (NamedSharding(mesh, split), NamedSharding(mesh, b_spec)), NamedSharding(mesh, out_spec)


@functools.cache
def _partitioned(kind: int, g, out_hw):
  def op(a, b):
    return _ffi(kind, g, out_hw, a, b)

  def partition(mesh, arg_shapes, result_shape):
    rank = len(arg_shapes[0].shape)
    n, arg_shardings, out_sharding = _specs(kind, mesh, arg_shapes[0].sharding, rank)

    def lower(a, b):
      out = _ffi(kind, g, out_hw, a, b)
      # The weight gradient sums over images: add up the partial sums of the devices splitting N.
      return jax.lax.psum(out, n) if kind == BWD_WEIGHTS and n is not None else out

    return mesh, lower, out_sharding, arg_shardings

  def infer(mesh, arg_shapes, result_shape):
    rank = len(arg_shapes[0].shape)
    return _specs(kind, mesh, arg_shapes[0].sharding, rank)[2]

  f = custom_partitioning(op)
  reduction = ("n",) if kind == BWD_WEIGHTS else ("c",) if kind == FWD else ("o",)
  f.def_partition(
    partition=partition,
    infer_sharding_from_operands=infer,
    sharding_rule=_RULES[kind],
    reduction_factors=reduction,
    # Shardy wants these in the order the factors first appear in the rule.
    need_replication_factors=tuple(
      k
      for k in dict.fromkeys(_RULES[kind].replace(",", " ").split())
      if k in "hwijpqco" and k not in reduction
    ),
  )
  return f


@functools.cache
def _batchable(kind: int, g, out_hw):
  @custom_vmap
  def f(a, b):
    return _partitioned(kind, g, out_hw)(a, b)

  @f.def_vmap
  def rule(axis_size, in_batched, a, b):
    a_batched, b_batched = in_batched
    a = a if a_batched else jnp.broadcast_to(a, (axis_size, *a.shape))
    b = b if b_batched else jnp.broadcast_to(b, (axis_size, *b.shape))
    return _batchable(kind, g, out_hw)(a, b), True

  return f


def call(kind: int, a: jax.Array, b: jax.Array, g, out_hw: tuple[int, int]) -> jax.Array:
  """One oneDNN call: `out_hw` is the result's spatial size (output, input or kernel)."""
  return _batchable(kind, g, tuple(out_hw))(a, b)
