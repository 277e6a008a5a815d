"""Flax Linen ResNets for the schedule comparison, and a registry to build them by name.

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
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lrjax.onednn import conv_general_dilated

STEMS = ("cifar", "imagenet")
SHORTCUTS = ("projection", "pad")

# He et al. (and torchvision) initialise convolutions with N(0, 2 / fan_out); the accuracies we
# compare against were obtained that way, so do the same instead of Flax's LeCun default.
he_normal = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

# `nn.Conv` with its convolution through oneDNN on a CPU where that builds, else XLA's (see
# lrjax/onednn): the same parameters and names, so checkpoints load on either path.
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)


def _check_stem(stem: str) -> None:
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
  """

  stage_sizes: Sequence[int]
  block_cls: type[nn.Module]
  num_classes: int
  num_filters: int = 64
  stem: str = "cifar"
  shortcut: str = "projection"
  zero_init_residual: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    _check_stem(self.stem)
    if self.shortcut not in SHORTCUTS:
      raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}")
    conv = functools.partial(Conv, use_bias=False, kernel_init=he_normal, dtype=self.dtype)
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

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    _check_stem(self.stem)
    if len(self.filters) != len(self.stages) + 1:
      raise ValueError(
        f"filters must have len(stages) + 1 = {len(self.stages) + 1} entries, got {self.filters!r}"
      )
    glorot = nn.initializers.xavier_uniform()
    conv = functools.partial(Conv, use_bias=False, kernel_init=glorot, dtype=self.dtype)
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


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """`nn.max_pool(x, (2, 2), strides=(2, 2))` on NHWC (an odd last row or column dropped, as
  VALID padding does) as a reshape and a max over each window: the same values, and a gradient
  that XLA:CPU computes several times faster than `reduce_window`'s select-and-scatter. A window
  whose maximum appears twice shares its gradient among them instead of giving it to the first;
  after a ReLU such ties are zeros, whose gradient the ReLU stops either way.
  """
  *lead, h, w, c = x.shape
  x = x[..., : h - h % 2, : w - w % 2, :]
  return x.reshape(*lead, h // 2, 2, w // 2, 2, c).max(axis=(-4, -2))


class ConvNet(nn.Module):
  """A small VGG-style network for quick studies on a CPU: per stage a 3x3 conv, BN, ReLU, and a
  2x2 max-pool between stages; global average pool and Dense. About 0.1M parameters and 7M
  multiply-adds for a 28x28 image (ResNet-20: 0.27M and 30M), so an epoch of Fashion-MNIST
  takes about half a minute on two CPU cores.
  """

  num_classes: int
  widths: Sequence[int] = (32, 64, 128)
  dtype: Any = jnp.float32
  stem: str = "cifar"  # no stem to choose: accepted so every model is built the same way

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = jnp.asarray(x, self.dtype)
    for i, width in enumerate(self.widths):
      if i:
        x = max_pool_2x2(x)
      x = Conv(width, (3, 3), use_bias=False, kernel_init=he_normal, dtype=self.dtype)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)(
        x
      )
      x = nn.relu(x)
    x = jnp.mean(x, axis=(1, 2))
    return jnp.asarray(nn.Dense(self.num_classes, dtype=self.dtype)(x), jnp.float32)


def _resnet(stage_sizes, block_cls, **fixed) -> Callable[..., nn.Module]:
  return functools.partial(ResNet, stage_sizes=stage_sizes, block_cls=block_cls, **fixed)


# He et al.'s CIFAR nets: 16/32/64 filters, option-A shortcuts and plain BN init, as in the
# paper, so that parameter counts (0.27M / 0.46M / 0.85M) and recipes match it.
_cifar = dict(num_filters=16, shortcut="pad", zero_init_residual=False)

_MODELS: dict[str, Callable[..., nn.Module]] = {
  "resnet18": _resnet((2, 2, 2, 2), BasicBlock),
  "resnet34": _resnet((3, 4, 6, 3), BasicBlock),
  "resnet50": _resnet((3, 4, 6, 3), BottleneckBlock),
  "resnet101": _resnet((3, 4, 23, 3), BottleneckBlock),
  "resnet20": _resnet((3, 3, 3), BasicBlock, **_cifar),
  "resnet32": _resnet((5, 5, 5), BasicBlock, **_cifar),
  "resnet56": _resnet((9, 9, 9), BasicBlock, **_cifar),
  "preact_resnet_tutorial": PreActResNet,
  "convnet": ConvNet,
  # For tests and smoke runs: about 5k parameters, compiles and steps in well under a second.
  "tiny": _resnet((1, 1), BasicBlock, num_filters=8, shortcut="pad"),
}


def model_names() -> tuple[str, ...]:
  """The names `create_model` accepts."""
  return tuple(_MODELS)


def create_model(
  name: str, num_classes: int, *, dtype: Any = jnp.float32, stem: str = "cifar"
) -> nn.Module:
  """Builds a registered model.

  Args:
    name: one of `model_names()`, e.g. "resnet50", "resnet20", "preact_resnet_tutorial", "tiny".
    num_classes: number of outputs, a positive integer.
    dtype: compute dtype (`jnp.float32` or `jnp.bfloat16`); parameters stay float32.
    stem: "cifar" (3x3/1 conv, no max-pool; for 28-32 pixel images) or "imagenet" (7x7/2 conv
      and 3x3/2 max-pool).

  Raises:
    ValueError: for an unknown name or stem, or a `num_classes` that is not a positive integer.
  """
  if name not in _MODELS:
    raise ValueError(f"name must be one of {', '.join(_MODELS)}; got {name!r}")
  if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
  _check_stem(stem)
  return _MODELS[name](num_classes=num_classes, dtype=dtype, stem=stem)


def init_variables(model: nn.Module, key: jax.Array, input_shape: Sequence[int]) -> dict:
  """`{"params": ..., "batch_stats": ...}` for images of shape `input_shape` (H, W, C).

  Wrap in `jax.eval_shape` to get shapes (and `count_params`) without computing anything.
  """
  x = jnp.zeros((1, *input_shape), jnp.float32)
  return dict(model.init({"params": key}, x, train=False))


def count_params(params: Any) -> int:
  """Number of scalars in a pytree of arrays or `jax.ShapeDtypeStruct`s."""
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))
