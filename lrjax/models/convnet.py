"""A small VGG-style ConvNet for quick studies on a CPU, and a fast 2x2 max-pool.

Applied as every built-in model is (see `lrjax.models.resnet`): NHWC float images in, float32
logits out, `train=` selecting batch or running BatchNorm statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from lrjax.models.resnet import conv_layer, he_normal


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
  convolution: Callable = lax.conv_general_dilated

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = jnp.asarray(x, self.dtype)
    conv = conv_layer(self.convolution, use_bias=False, kernel_init=he_normal, dtype=self.dtype)
    for i, width in enumerate(self.widths):
      if i:
        x = max_pool_2x2(x)
      x = conv(width, (3, 3))(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)(
        x
      )
      x = nn.relu(x)
    x = jnp.mean(x, axis=(1, 2))
    return jnp.asarray(nn.Dense(self.num_classes, dtype=self.dtype)(x), jnp.float32)
