"""A user's own dataset, named in a config as `config.dataset = "package.module:function"`.

The function takes no arguments and returns a mapping with `train_images` and `test_images`
(uint8, [N, H, W, C]), `train_labels` and `test_labels` (integers in [0, num_classes)) and
`num_classes`; and optionally `validation_images` and `validation_labels`, a validation split of
its own (never trained on; otherwise `config.validation_fraction` holds one out of the training
split). Every failure (a module that does not import, a missing attribute, a result of the
wrong kind, arrays of the wrong shape or type) is one `ValueError` that names `config.dataset`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lrjax.import_path import import_object

ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")
VALIDATION = ("validation_images", "validation_labels")


def load_arrays(path: str) -> dict[str, Any]:
  """Calls the user's loader and checks what it returned (see the module docstring).

  Args:
    path: the loader, "package.module:function" (`config.dataset`).

  Returns:
    The arrays as NumPy arrays (the validation split's when the loader returned one) and
    `num_classes` as an int: the keyword arguments of a `Dataset`, without its `name`.

  Raises:
    ValueError: naming `config.dataset`, for every failure (import, call, missing keys, arrays of
      the wrong shape or type, a number of classes below 2).
  """
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
  given = [k for k in VALIDATION if k in got]
  if len(given) == 1:
    raise ValueError(f"config.dataset={path!r} returned {given[0]} alone; return both {VALIDATION}")
  out: dict[str, Any] = {}
  for key in (*ARRAYS, *given):
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
