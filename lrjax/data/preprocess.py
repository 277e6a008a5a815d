"""On-device preprocessing inside the jitted train step: normalisation and augmentation.

Pure jnp on uint8 batches, vectorised over the batch, so it runs on a sharded batch and XLA fuses
it with the first convolution; the noise of step t comes from the run's key folded with t.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def normalize(images: jax.Array, mean: Any, std: Any) -> jax.Array:
  """`(images - mean) / std` per channel, in float32.

  Args:
    images: [..., C] images in pixel units (uint8 or float).
    mean: the per-channel mean, shape [C] (or a scalar), in pixel units.
    std: the per-channel standard deviation, shape [C] (or a scalar), in pixel units.

  Returns:
    float32 images of the same shape.

  Example:
    >>> from lrjax.data.preprocess import normalize
    >>> images = np.array([[[[0, 100], [200, 110]]]], np.uint8)  # [1, 1, 2, 2]
    >>> normalize(images, mean=[100, 100], std=[50, 10]).tolist()
    [[[[-2.0, 0.0], [2.0, 1.0]]]]
  """
  c = images.shape[-1]
  shape = (1,) * (images.ndim - 1) + (c,)
  mean = jnp.reshape(jnp.asarray(mean, jnp.float32), shape)
  inv_std = jnp.reshape(1.0 / jnp.asarray(std, jnp.float32), shape)
  return (images.astype(jnp.float32) - mean) * inv_std


def augment(
  key: jax.Array, images: jax.Array, pad: int = 4, flip: bool = True, mode: str = "zero"
) -> jax.Array:
  """Random `pad`-pixel translation (pad, then crop back) and horizontal flip, per image.

  The standard CIFAR augmentation of He et al. 2016. `mode="zero"` pads with black pixels, as
  He et al. and torchvision's `RandomCrop(32, padding=4)` do (pad *before* `normalize`);
  `mode="reflect"` mirrors the border instead. Shape and dtype are kept. Pure jnp and vectorised
  over the batch, so it runs inside a jitted step on a sharded batch; the result depends on the
  key and the batch size. `pad`, `flip` and `mode` are Python values (static under jit).

  Args:
    key: the random key of this batch.
    images: [N, H, W, C] images.
    pad: the largest shift in pixels, an integer >= 0 (0: no translation).
    flip: flip each image horizontally with probability 1/2.
    mode: "zero" or "reflect", how the padding is filled.

  Returns:
    The augmented images, of the shape and dtype of `images`.

  Raises:
    ValueError: for an unknown `mode`, a negative `pad`, or a `pad` as large as the image with
      `mode="reflect"`.
  """
  if mode not in ("zero", "reflect"):
    raise ValueError(f"mode must be 'zero' or 'reflect', got {mode!r}")
  n, h, w, c = images.shape
  if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
    raise ValueError(f"pad must be a non-negative integer, got {pad!r}")
  if mode == "reflect" and pad >= min(h, w):
    raise ValueError(f"pad must be smaller than the image for mode='reflect', got {pad!r}")
  crop_key, flip_key = jax.random.split(key)
  if pad:
    padded = jnp.pad(
      images,
      ((0, 0), (pad, pad), (pad, pad), (0, 0)),
      mode="constant" if mode == "zero" else "reflect",
    )
    offsets = jax.random.randint(crop_key, (n, 2), 0, 2 * pad + 1)
    crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, c))
    images = jax.vmap(crop)(padded, offsets)
  if flip:
    flips = jax.random.bernoulli(flip_key, 0.5, (n, 1, 1, 1))
    images = jnp.where(flips, images[:, :, ::-1, :], images)
  return images
