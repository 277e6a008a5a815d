"""Checks of an experiment config, run before anything loads or compiles.

Each message names the config field and its value, and the command-line override that fixes it.
"""

from __future__ import annotations

from typing import Any

from lrjax.data import datasets as data_lib
from lrjax.import_path import is_import_path
from lrjax.models import registry, resnet
from lrjax.train.optimizers import OPTIMIZERS

REQUIRED = (
  "model",
  "stem",
  "half_precision",
  "dataset",
  "data_dir",
  "train_limit",
  "augment",
  "pad",
  "flip",
  "optimizer",
  "momentum",
  "nesterov",
  "weight_decay",
  "batch_size",
  "num_epochs",
  "schedule",
  "seed",
  "eval_batch_size",
  "checkpoint_every_epochs",
  "checkpoint_every_steps",
  "keep_checkpoints",
  "log_every_steps",
  "progress",
  "tensorboard",
)


def _fail(field: str, value: Any, want: str) -> None:
  raise ValueError(
    f"config.{field} must be {want}, got {value!r} (override with --config.{field}=...)"
  )


def _positive_int(config: Any, field: str, allow_zero: bool = False) -> None:
  v = config[field]
  if isinstance(v, bool) or not isinstance(v, int) or v < (0 if allow_zero else 1):
    _fail(field, v, "a non-negative integer" if allow_zero else "a positive integer")


def check_config(config: Any) -> None:
  """Raises ValueError for the first missing or bad field of an experiment config."""
  for field in REQUIRED:
    if field not in config:
      raise ValueError(
        f"config has no field {field!r}; start from lrjax.configs.default (configs/default.py)"
      )
  if config.model not in registry.model_names() and not is_import_path(config.model):
    _fail("model", config.model, f"one of {list(registry.model_names())} or 'package.module:Class'")
  if config.stem not in resnet.STEMS:
    _fail("stem", config.stem, f"one of {list(resnet.STEMS)}")
  if not isinstance(config.dataset, str) or not config.dataset:
    _fail(
      "dataset",
      config.dataset,
      f"one of {list(data_lib.dataset_names())}, a tfds name or 'package.module:function'",
    )
  if config.optimizer not in OPTIMIZERS:
    _fail("optimizer", config.optimizer, f"one of {list(OPTIMIZERS)}")
  for field in (
    "batch_size",
    "num_epochs",
    "eval_batch_size",
    "checkpoint_every_epochs",
    "keep_checkpoints",
    "log_every_steps",
  ):
    _positive_int(config, field)
  for field in ("train_limit", "checkpoint_every_steps", "pad", "seed"):
    _positive_int(config, field, allow_zero=True)
  for field in ("momentum", "weight_decay"):
    v = config[field]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
      _fail(field, v, "a finite number >= 0")
  fraction = config.get("validation_fraction", 0.0)
  if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
    _fail("validation_fraction", fraction, "a number in [0, 1)")
  if not hasattr(config.schedule, "get") or "name" not in config.schedule:
    _fail("schedule", config.schedule, "a schedule config with a 'name' (see lrjax.registry())")


def check_devices(config: Any, num_devices: int) -> None:
  if config.batch_size % num_devices:
    _fail("batch_size", config.batch_size, f"divisible by the number of devices ({num_devices})")


def round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple
