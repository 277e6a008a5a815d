"""Models by name: the built-in ones (`model_names()`) or the user's own, `"package.module:Attr"`.

A user's model is a Flax linen module class, or a function returning a module, called with
`num_classes=` (and `dtype=` where it takes one). It is applied as the built-in models are,
`model.apply(variables, images, train=...)` on float images normalised per channel; a
`batch_stats` collection, if it has one, is updated in training and used in evaluation, and a
`dropout` rng is passed in training. Every failure is one `ValueError` naming `config.model`.

A user's model may also be a Flax NNX module class (`nnx.Module`): it is built with
`num_classes=` (and `dtype=`, `convolution=`, `image_shape=` where its `__init__` takes them)
and `rngs=`, and
called as `model(images, train=...)` (pass `use_running_average=not train` to its BatchNorm
layers and `deterministic=not train` to its Dropout layers). lrjax runs it through
`flax.nnx.bridge.ToLinen`, so its parameters and BatchNorm statistics are the `params` and
`batch_stats` collections of a linen model: it trains, evaluates, checkpoints, resumes and
shards over devices on the same code path as a linen model. Its `rngs` hold a `params` stream
when it is built at initialisation and a `dropout` stream (fresh at every step) in training.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from lrjax.import_path import import_object
from lrjax.models.convnet import ConvNet
from lrjax.models.resnet import BasicBlock, BottleneckBlock, PreActResNet, ResNet, check_stem


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
  """The names `create_model` accepts, in the registry's order.

  Example:
    >>> from lrjax.models.registry import model_names
    >>> "resnet20" in model_names(), "tiny" in model_names()
    (True, True)
  """
  return tuple(_MODELS)


def create_model(
  name: str,
  num_classes: int,
  *,
  dtype: Any = jnp.float32,
  stem: str = "cifar",
  convolution: Callable = lax.conv_general_dilated,
) -> nn.Module:
  """Builds a registered model.

  Args:
    name: one of `model_names()`, e.g. "resnet50", "resnet20", "preact_resnet_tutorial", "tiny".
    num_classes: number of outputs, a positive integer.
    dtype: compute dtype (`jnp.float32` or `jnp.bfloat16`); parameters stay float32.
    stem: "cifar" (3x3/1 conv, no max-pool; for 28-32 pixel images) or "imagenet" (7x7/2 conv
      and 3x3/2 max-pool).
    convolution: the `conv_general_dilated` its convolution layers compute with (the runtime's
      choice, `lrjax.runtime.Runtime.convolution`); XLA's by default.

  Returns:
    The linen module, applied as `model.apply(variables, images, train=...)` to float NHWC
    images; its output is float32 logits [batch, num_classes].

  Raises:
    ValueError: for an unknown name or stem, or a `num_classes` that is not a positive integer.

  Example:
    >>> import jax
    >>> from lrjax.models.registry import count_params, create_model, init_variables
    >>> model = create_model("resnet20", num_classes=10)
    >>> shapes = jax.eval_shape(lambda: init_variables(model, jax.random.key(0), (32, 32, 3)))
    >>> count_params(shapes["params"])  # He et al.'s 0.27M
    269722
  """
  if name not in _MODELS:
    raise ValueError(f"name must be one of {', '.join(_MODELS)}; got {name!r}")
  if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
  check_stem(stem)
  if not callable(convolution):
    raise ValueError(f"convolution must be a conv_general_dilated function, got {convolution!r}")
  return _MODELS[name](num_classes=num_classes, dtype=dtype, stem=stem, convolution=convolution)


def init_rngs(key: jax.Array) -> dict[str, jax.Array]:
  """The rngs of a model's `init`: `params`, and a `dropout` stream an NNX model's Dropout layers
  take when built (unused by linen models at `train=False`, so their parameters do not change).

  Args:
    key: the initialisation's random key.

  Returns:
    A dict holding `key` under "params" and under "dropout".
  """
  return {"params": key, "dropout": key}


def init_variables(model: nn.Module, key: jax.Array, input_shape: Sequence[int]) -> dict:
  """Initialises `model`'s variables for images of shape `input_shape` (H, W, C).

  Wrap in `jax.eval_shape` to get shapes (and `count_params`) without computing anything.

  Args:
    model: a linen module taking `(images, train=...)`, such as `create_model` returns.
    key: the random key of the initialisation (`init_rngs` makes its rngs).
    input_shape: (H, W, C) of one image.

  Returns:
    The variables, a dict of "params" (and "batch_stats" for a model with BatchNorm layers).
  """
  x = jnp.zeros((1, *input_shape), jnp.float32)
  return dict(model.init(init_rngs(key), x, train=False))


def count_params(params: Any) -> int:
  """Number of scalars in a pytree whose leaves are arrays or `jax.ShapeDtypeStruct`.

  Args:
    params: a pytree of arrays or shapes (`params` of `init_variables`, under `jax.eval_shape`).

  Returns:
    The sum of the leaves' sizes.

  Example:
    >>> from lrjax.models.registry import count_params
    >>> count_params({"dense": {"kernel": np.zeros((3, 4)), "bias": np.zeros(4)}})
    16
  """
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))


def _accepts(fn: Any, name: str) -> bool:
  try:
    params = inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return False
  return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def build_user_model(
  path: str,
  num_classes: int,
  dtype: Any,
  convolution: Callable = lax.conv_general_dilated,
  image_shape: tuple[int, ...] | None = None,
) -> nn.Module:
  """Builds the user's model `path` (see the module docstring for what it may be).

  It is called with `num_classes=`, and with `dtype=`, `convolution=` and `image_shape=` where it
  takes them: a model that passes `convolution` to its `nn.Conv(conv_general_dilated=...)` runs
  on the runtime's convolution path, as the built-in ones do; an NNX model learns its input
  channels from `image_shape`.

  Args:
    path: "package.module:Attr" (`config.model`): a linen module class, a function returning a
      linen module, or an NNX module class.
    num_classes: the number of outputs.
    dtype: the compute dtype, for a model that takes `dtype`.
    convolution: the `conv_general_dilated` of the runtime, for a model that takes it.
    image_shape: (H, W, C) of an image, for a model that takes it, or None.

  Returns:
    A linen module (an NNX model wrapped by `flax.nnx.bridge.ToLinen`).

  Raises:
    ValueError: naming `config.model`, if `path` does not import, is not callable, cannot be
      built with these arguments, or does not give a module.
  """
  factory = import_object(path, "model")
  if not callable(factory):
    raise ValueError(f"config.model={path!r} is not a module class or a function")
  signature = factory.__init__ if _is_nnx(factory) else factory
  kwargs: dict[str, Any] = {"num_classes": num_classes}
  if _accepts(signature, "dtype"):
    kwargs["dtype"] = dtype
  if _accepts(signature, "convolution"):
    kwargs["convolution"] = convolution
  if image_shape is not None and _accepts(signature, "image_shape"):
    kwargs["image_shape"] = tuple(image_shape)
  if _is_nnx(factory):
    return _nnx_model(factory, kwargs, path)
  try:
    model = factory(**kwargs)
  except Exception as e:
    raise ValueError(
      f"config.model={path!r} could not be built with {sorted(kwargs)} ({type(e).__name__}: {e})"
    ) from None
  if not isinstance(model, nn.Module):
    raise ValueError(
      f"config.model={path!r} must give a flax.linen Module, got {type(model).__name__}"
    )
  return model


def _is_nnx(factory: Any) -> bool:
  if not inspect.isclass(factory):
    return False
  from flax import nnx

  return issubclass(factory, nnx.Module)


def _nnx_model(cls: type, kwargs: dict[str, Any], path: str) -> nn.Module:
  """The NNX module class `cls` as a linen module (see the module docstring)."""
  from flax.core import FrozenDict
  from flax.nnx import bridge

  if not _accepts(cls.__init__, "rngs"):
    raise ValueError(
      f"config.model={path!r} is an nnx.Module whose __init__ takes no `rngs`: lrjax builds it "
      f"with {sorted(kwargs)} and rngs=nnx.Rngs(...)"
    )
  return bridge.ToLinen(cls, kwargs=FrozenDict(kwargs))


def check_model_output(model: nn.Module, path: str, image_shape: tuple, num_classes: int) -> None:
  """Traces the user's model once (shapes only) and checks it returns [batch, num_classes].

  Args:
    model: the built model (`build_user_model`).
    path: its "package.module:Attr", for the message.
    image_shape: (H, W, C) of an image.
    num_classes: the number of outputs it must give.

  Raises:
    ValueError: naming `config.model`, if the model fails on a batch of 2 images at
      `train=False` or returns another shape.
  """
  x = jnp.zeros((2, *image_shape), jnp.float32)
  try:
    variables = jax.eval_shape(lambda: model.init(init_rngs(jax.random.PRNGKey(0)), x, train=False))
    out = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  except Exception as e:
    raise ValueError(
      f"config.model={path!r} fails on images of shape {x.shape} with train=False "
      f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    ) from None
  if not hasattr(out, "shape") or tuple(out.shape) != (2, num_classes):
    raise ValueError(
      f"config.model={path!r} must return logits of shape (batch, {num_classes}), got "
      f"{getattr(out, 'shape', type(out).__name__)} for a batch of 2"
    )
