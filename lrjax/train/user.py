"""A user's own model and data, named in a config as `"package.module:attribute"`.

* `config.model = "my_pkg.nets:WideNet"`: a Flax linen module class, or a function returning a
  module, called with `num_classes=` (and `dtype=` where it takes one). It is applied as the
  built-in models are, `model.apply(variables, images, train=...)` on float images normalised
  per channel; a `batch_stats` collection, if it has one, is updated in training and used in
  evaluation, and a `dropout` rng is passed in training.
* `config.dataset = "my_pkg.data:load"`: a function of no arguments returning a mapping with
  `train_images` and `test_images` (uint8, [N, H, W, C]), `train_labels` and `test_labels`
  (integers in [0, num_classes)) and `num_classes`.

Every failure (a module that does not import, a missing attribute, a result of the wrong kind,
arrays of the wrong shape or type) is one `ValueError` that names the config field.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def is_import_path(name: Any) -> bool:
  """True for "package.module:attribute" (what selects a user's model or dataset)."""
  return isinstance(name, str) and name.count(":") == 1 and not name.startswith("synthetic")


def import_object(path: str, field: str) -> Any:
  """The attribute named by "package.module:attribute" (nested attributes with dots)."""
  module_name, _, attribute = path.partition(":")
  if not module_name or not attribute:
    raise ValueError(f"config.{field} must be 'package.module:attribute', got {path!r}")
  try:
    obj = importlib.import_module(module_name)
  except Exception as e:  # a user's module may fail in any way: say which and why, in one line
    raise ValueError(
      f"config.{field}={path!r}: cannot import module {module_name!r} ({type(e).__name__}: {e})"
    ) from None
  for part in attribute.split("."):
    if not hasattr(obj, part):
      raise ValueError(
        f"config.{field}={path!r}: module {module_name!r} has no attribute {attribute!r}"
      )
    obj = getattr(obj, part)
  return obj


def _accepts(fn: Any, name: str) -> bool:
  try:
    params = inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return False
  return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def build_model(path: str, num_classes: int, dtype: Any) -> nn.Module:
  """Builds the user's model `path` with `num_classes=` (and `dtype=` where it takes one)."""
  factory = import_object(path, "model")
  if not callable(factory):
    raise ValueError(f"config.model={path!r} is not a module class or a function")
  kwargs: dict[str, Any] = {"num_classes": num_classes}
  if _accepts(factory, "dtype"):
    kwargs["dtype"] = dtype
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


def check_model_output(model: nn.Module, path: str, image_shape: tuple, num_classes: int) -> None:
  """Traces the user's model once (shapes only) and checks it returns [batch, num_classes]."""
  x = jnp.zeros((2, *image_shape), jnp.float32)
  try:
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))
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


ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


def load_arrays(path: str) -> dict[str, Any]:
  """Calls the user's loader and checks what it returned (the shapes and dtypes it must have)."""
  loader = import_object(path, "dataset")
  if not callable(loader):
    raise ValueError(f"config.dataset={path!r} is not a function")
  try:
    got = loader()
  except Exception as e:
    raise ValueError(f"config.dataset={path!r} failed ({type(e).__name__}: {e})") from None
  if not isinstance(got, Mapping):
    raise ValueError(f"config.dataset={path!r} must return a mapping, got {type(got).__name__}")
  missing = [k for k in (*ARRAYS, "num_classes") if k not in got]
  if missing:
    raise ValueError(f"config.dataset={path!r} returned no {missing}")
  out: dict[str, Any] = {}
  for key in ARRAYS:
    a = np.asarray(got[key])
    if key.endswith("images") and (a.dtype != np.uint8 or a.ndim != 4):
      raise ValueError(
        f"config.dataset={path!r}: {key} must be uint8 [N, H, W, C], got {a.dtype} {a.shape}"
      )
    if key.endswith("labels") and (a.ndim != 1 or not np.issubdtype(a.dtype, np.integer)):
      raise ValueError(
        f"config.dataset={path!r}: {key} must be integers of shape [N], got {a.dtype} {a.shape}"
      )
    out[key] = a
  k = got["num_classes"]
  if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
    raise ValueError(f"config.dataset={path!r}: num_classes must be an integer >= 2, got {k!r}")
  out["num_classes"] = int(k)
  return out
