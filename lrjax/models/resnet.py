"""Flax Linen ResNets for the schedule comparison (built by name through `lrjax.models.registry`).

* `ResNet`: ResNet v1.5 (the stride sits on the 3x3 convolution, as in the Flax ImageNet example,
  torchvision and NVIDIA's reference), with basic or bottleneck blocks. `stem="cifar"` is a 3x3
  stride-1 convolution without max-pool, for 32x32 inputs; `stem="imagenet"` is the 7x7/2
  convolution and 3x3/2 max-pool, which leaves only 8x8 of a 32x32 image after the stem.
  ResNet-18/34/50/101 and He et al.'s CIFAR ResNet-20/32/56 are configurations of it.
* `PreActResNet`: the small pre-activation bottleneck ResNet of the Keras tutorial whose CIFAR-10
  table of schedules the chapter reproduces.

Every model takes NHWC float images (normalised by the caller) and returns float32 logits, and is
applied as `model.apply({"params": p, "batch_stats": s}, x, train=True, mutable=["batch_stats"])`.
`dtype` is the compute dtype (e.g. `jnp.bfloat16`); parameters and batch statistics stay float32.

BatchNorm has no `axis_name`: training runs under `jax.jit` with the batch sharded over a device
mesh, where a mean over the batch axis is already global, so batch statistics are synchronised
across devices with no collective written here (the Flax example needs `axis_name` under pmap).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

STEMS = ("cifar", "imagenet")
SHORTCUTS = ("projection", "pad")

# He et al. (and torchvision) initialise convolutions with N(0, 2 / fan_out); the accuracies we
# compare against were obtained that way, so do the same instead of Flax's LeCun default.
he_normal = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def conv_layer(convolution: Callable, **kwargs) -> Callable[..., nn.Module]:
  """`nn.Conv` computing with `convolution` (XLA's `lax.conv_general_dilated`, or the runtime's
  oneDNN one): the same parameters and names either way, so checkpoints load on both paths."""
  return functools.partial(nn.Conv, conv_general_dilated=convolution, **kwargs)


def check_stem(stem: str) -> None:
  if stem not in STEMS:
    raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")


def _pad_shortcut(x: jax.Array, features: int, strides: int) -> jax.Array:
  """He et al.'s option A: subsample, then zero-pad the new channels; adds no parameters."""
  x = x[:, ::strides, ::strides, :]
  extra = features - x.shape[-1]
  return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, extra))) if extra > 0 else x


class _Block(nn.Module):
  """The fields and the residual sum that every ResNet block shares."""

  features: int
  conv: Callable[..., nn.Module]
  norm: Callable[..., nn.Module]
  strides: int = 1
  shortcut: str = "projection"
  zero_init_residual: bool = True

  def _residual(self, x: jax.Array, y: jax.Array) -> jax.Array:
    y = self.norm(scale_init=_last_scale_init(self.zero_init_residual))(y)
    return nn.relu(y + _shortcut(self, x, y))


class BasicBlock(_Block):
  """Two 3x3 convolutions (ResNet-18/34 and the CIFAR ResNets)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.conv(self.features, (3, 3), self.strides)(x)
    y = nn.relu(self.norm()(y))
    return self._residual(x, self.conv(self.features, (3, 3))(y))


class BottleneckBlock(_Block):
  """1x1 reduce, 3x3 (strided: v1.5), 1x1 expand by 4 (ResNet-50/101)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = nn.relu(self.norm()(self.conv(self.features, (1, 1))(x)))
    y = nn.relu(self.norm()(self.conv(self.features, (3, 3), self.strides)(y)))
    return self._residual(x, self.conv(self.features * 4, (1, 1))(y))


def _last_scale_init(zero: bool) -> Callable[..., Any]:
  # Zero-init of the last BN scale makes every block start as the identity (Goyal et al. 2017),
  # which lets deep nets train at large learning rates from the first step.
  return nn.initializers.zeros if zero else nn.initializers.ones


def _shortcut(block: _Block, x: jax.Array, y: jax.Array) -> jax.Array:
  if x.shape == y.shape:
    return x
  if block.shortcut == "pad":
    return _pad_shortcut(x, y.shape[-1], block.strides)
  x = block.conv(y.shape[-1], (1, 1), block.strides, name="conv_proj")(x)
  return block.norm(name="norm_proj")(x)


class ResNet(nn.Module):
  """ResNet v1.5; stage `i` has `stage_sizes[i]` blocks of `num_filters * 2**i` features.

  Attributes:
    stage_sizes: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50, (3, 3, 3) for ResNet-20.
    block_cls: `BasicBlock` or `BottleneckBlock`.
    num_classes: outputs of the final Dense layer.
    num_filters: features of the stem and the first stage (64; 16 for the CIFAR ResNets).
    stem: "cifar" (3x3/1, no max-pool) or "imagenet" (7x7/2 + 3x3/2 max-pool).
    shortcut: "projection" (1x1 conv + BN when the shape changes) or "pad" (He et al.'s
      parameter-free option A used for ResNet-20/32/56).
    zero_init_residual: zero-init the last BN scale of each block.
    dtype: compute dtype; parameters are float32 either way.
    convolution: the `conv_general_dilated` every convolution layer computes with.
  """

  stage_sizes: Sequence[int]
  block_cls: type[nn.Module]
  num_classes: int
  num_filters: int = 64
  stem: str = "cifar"
  shortcut: str = "projection"
  zero_init_residual: bool = True
  dtype: Any = jnp.float32
  convolution: Callable = lax.conv_general_dilated

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    check_stem(self.stem)
    if self.shortcut not in SHORTCUTS:
      raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}")
    conv = conv_layer(self.convolution, use_bias=False, kernel_init=he_normal, dtype=self.dtype)
    norm = functools.partial(
      nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype
    )
    x = jnp.asarray(x, self.dtype)
    if self.stem == "cifar":
      x = conv(self.num_filters, (3, 3), name="conv_init")(x)
    else:
      x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name="conv_init")(x)
    x = nn.relu(norm(name="bn_init")(x))
    if self.stem == "imagenet":
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    for i, n_blocks in enumerate(self.stage_sizes):
      for j in range(n_blocks):
        x = self.block_cls(
          features=self.num_filters * 2**i,
          conv=conv,
          norm=norm,
          strides=2 if i > 0 and j == 0 else 1,
          shortcut=self.shortcut,
          zero_init_residual=self.zero_init_residual,
        )(x)
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dense(self.num_classes, dtype=self.dtype)(x)
    # Logits in float32 so that softmax cross-entropy is not computed in bfloat16.
    return jnp.asarray(x, jnp.float32)


class PreActBottleneck(nn.Module):
  """BN-ReLU-conv bottleneck of the Keras tutorial: 1x1 (features/4), 3x3 (strided), 1x1."""

  features: int
  conv: Callable[..., nn.Module]
  norm: Callable[..., nn.Module]
  strides: int = 1
  project: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    act = nn.relu(self.norm()(x))
    y = self.conv(self.features // 4, (1, 1))(act)
    y = self.conv(self.features // 4, (3, 3), self.strides)(nn.relu(self.norm()(y)))
    y = self.conv(self.features, (1, 1))(nn.relu(self.norm()(y)))
    # The tutorial projects the first block of every stage, from the pre-activated input.
    shortcut = (
      self.conv(self.features, (1, 1), self.strides, name="conv_proj")(act) if (self.project) else x
    )
    return y + shortcut


class PreActResNet(nn.Module):
  """The Keras tutorial's pre-activation bottleneck ResNet (`ResNet.build(32, 32, 3, 10,
  (9, 9, 9), (64, 64, 128, 256), reg=5e-4)`).

  Input BN, a 3x3 stem conv with `filters[0]` features, then stage `i` of `stages[i]` bottleneck
  blocks with `filters[i + 1]` output features (stride 2 from the second stage), a final BN-ReLU,
  global average pooling and a Dense layer with bias. BN epsilon 2e-5, momentum 0.9, as Keras
  there. Initialisers are the Keras defaults (Glorot uniform, zero bias) for fidelity. The
  tutorial's 8x8 average pool is a global pool for 32x32 inputs; a global pool also accepts
  28x28 ones. Its L2 penalty (5e-4 on conv and Dense kernels) belongs to the loss, not here.
  """

  num_classes: int
  stages: Sequence[int] = (9, 9, 9)
  filters: Sequence[int] = (64, 64, 128, 256)
  stem: str = "cifar"
  dtype: Any = jnp.float32
  convolution: Callable = lax.conv_general_dilated

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    check_stem(self.stem)
    if len(self.filters) != len(self.stages) + 1:
      raise ValueError(
        f"filters must have len(stages) + 1 = {len(self.stages) + 1} entries, got {self.filters!r}"
      )
    glorot = nn.initializers.xavier_uniform()
    conv = conv_layer(self.convolution, use_bias=False, kernel_init=glorot, dtype=self.dtype)
    norm = functools.partial(
      nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=2e-5, dtype=self.dtype
    )
    x = norm(name="bn_input")(jnp.asarray(x, self.dtype))
    if self.stem == "cifar":
      x = conv(self.filters[0], (3, 3), name="conv_init")(x)
    else:
      x = conv(self.filters[0], (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name="conv_init")(x)
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    for i, n_blocks in enumerate(self.stages):
      for j in range(n_blocks):
        x = PreActBottleneck(
          features=self.filters[i + 1],
          conv=conv,
          norm=norm,
          strides=2 if i > 0 and j == 0 else 1,
          project=j == 0,
        )(x)
    x = nn.relu(norm(name="bn_final")(x))
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dense(self.num_classes, kernel_init=glorot, dtype=self.dtype)(x)
    return jnp.asarray(x, jnp.float32)
