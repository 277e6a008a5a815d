"""A dataset read through tensorflow-datasets (`tfds.data_source`), for `load_dataset`.

Only data already prepared in a tfds data_dir is read (or downloaded with `download=True`);
tensorflow_datasets is imported here alone, when a dataset is read through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrjax.data.errors import DatasetNotFoundError

_TFDS_HINT = (
  " Or prepare it once with tensorflow_datasets where TensorFlow and the network are available "
  "(file_format='array_record') and set data_dir (config.data_dir; --config.data_dir=FOLDER on "
  "the command line) to that tfds data_dir."
)


def load(
  name: str,
  data_dir: str | None,
  download: bool,
  splits: tuple[str, ...],
  num_classes: int | None,
  how: str,
) -> dict:
  """The tfds dataset `name`'s `splits` (train, test and maybe validation) as arrays.

  Args:
    name: a tfds image classification dataset, with `image` and `label` features.
    data_dir: the tfds data_dir, or None for tfds' default.
    download: let tfds download and prepare the dataset.
    splits: the train and test split names, and optionally the validation split's.
    num_classes: the number of classes, or None to read it from the `label` feature.
    how: how to get the dataset otherwise, added to the error messages ("" for none).

  Returns:
    The keyword arguments of a `lrjax.data.datasets.Dataset`: the train and test arrays (and the
    validation ones where `splits` names a third), `num_classes` and `name`.

  Raises:
    DatasetNotFoundError: tensorflow_datasets is not installed or a split is not found.
    ValueError: the dataset has no `image` and `label` (ClassLabel) features.
  """
  where = f"data_dir={data_dir!r}" if data_dir else "the default tfds data_dir"
  try:
    import tensorflow_datasets as tfds  # optional: training machines may not have it
  except ImportError:
    known = f" {how}" if how else " Install lrjax[tfds] to read it through tensorflow_datasets."
    raise DatasetNotFoundError(
      f"config.dataset={name!r}: no local files found in {where} and tensorflow_datasets is not "
      f"installed.{known}"
    ) from None
  arrays = []
  for split in splits:
    try:
      src = tfds.data_source(name, split=split, data_dir=data_dir, download=download)
    except Exception as e:  # tfds raises many types here; the user needs the way out, not them
      reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
      raise DatasetNotFoundError(
        f"config.dataset={name!r}: split {split!r} not found in {where} by tensorflow_datasets "
        f"({reason}).{' ' + how if how else ''}{_TFDS_HINT}"
      ) from None
    if num_classes is None:
      num_classes = _num_classes(src, name)
    n = len(src)
    first = np.asarray(src[0]["image"]) if n else np.zeros((0, 0, 0), np.uint8)
    images = np.empty((n, *first.shape), np.uint8)
    labels = np.empty((n,), np.int32)
    for i in range(n):  # the tfds mock does not implement batched __getitems__
      example = src[i]
      images[i] = example["image"]
      labels[i] = example["label"]
    arrays += [images, labels]
  validation = {}
  if len(arrays) == 6:
    validation = {"validation_images": arrays[4], "validation_labels": arrays[5]}
  keys = ("train_images", "train_labels", "test_images", "test_labels")
  return {**dict(zip(keys, arrays[:4])), "num_classes": num_classes, "name": name, **validation}


def _num_classes(src: Any, name: str) -> int:
  try:
    features = src.dataset_info.features
    return int(features["label"].num_classes)
  except Exception:  # not an image classification dataset: say what it must have
    raise ValueError(
      f"config.dataset={name!r}: a tensorflow-datasets dataset needs `image` and `label` "
      "(ClassLabel) features"
    ) from None
