"""The named datasets read from their original files: IDX (MNIST, Fashion-MNIST), CIFAR binary."""

from __future__ import annotations

import os

import numpy as np

from lrjax.data.errors import DatasetNotFoundError
from lrjax.data.readers import read_cifar_binary, read_idx


def has_files(name: str, folder: str | None) -> bool:
  """Whether `folder` holds the original files of the dataset `name`.

  Args:
    name: "mnist", "fashion_mnist", "cifar10" or "cifar100".
    folder: the folder to look in (for CIFAR, also its `cifar-10-batches-bin` or
      `cifar-100-binary` subfolder), or None.

  Returns:
    True when the files are there; False for a `folder` of None or one that does not exist.
  """
  if folder is None or not os.path.isdir(folder):
    return False
  if name in ("mnist", "fashion_mnist"):
    return _find_idx(folder, "train", "images") is not None
  return _cifar_folder(name, folder) is not None


def load(name: str, folder: str, num_classes: int, shape: tuple[int, ...], how: str) -> dict:
  """Reads `name`'s train and test splits from its original files in `folder`.

  Args:
    name: "mnist", "fashion_mnist", "cifar10" or "cifar100".
    folder: the folder of the IDX files, or of the CIFAR binary files (or their parent).
    num_classes: the dataset's number of classes.
    shape: its image shape (H, W, C).
    how: how to get the files, added to the error messages.

  Returns:
    The keyword arguments of a `lrjax.data.datasets.Dataset`: the four arrays, `num_classes`
    and `name`.

  Raises:
    DatasetNotFoundError: a file is missing.
    ValueError: a file is corrupt or its arrays have the wrong shape.
  """
  if name in ("mnist", "fashion_mnist"):
    arrays = {}
    for split in ("train", "t10k"):
      for kind in ("images", "labels"):
        path = _find_idx(folder, split, kind)
        if path is None:
          raise DatasetNotFoundError(f"{name}: no {split}-{kind} IDX file in {folder!r}. {how}")
        arrays[split, kind] = read_idx(path)
    splits = [
      _check_idx_split(arrays[s, "images"], arrays[s, "labels"], shape) for s in ("train", "t10k")
    ]
  else:
    found = _cifar_folder(name, folder)
    if found is None:
      raise DatasetNotFoundError(f"{name}: no CIFAR binary files in {folder!r}. {how}")
    label_bytes = 2 if name == "cifar100" else 1
    splits = [
      read_cifar_binary([os.path.join(found, f) for f in files], label_bytes)
      for files in _CIFAR_FILES[name]
    ]
  (train_x, train_y), (test_x, test_y) = splits
  return {
    "train_images": train_x,
    "train_labels": train_y,
    "test_images": test_x,
    "test_labels": test_y,
    "num_classes": num_classes,
    "name": name,
  }


# ------------------------------------------------------------------ IDX (MNIST, Fashion-MNIST)


def _find_idx(folder: str, split: str, kind: str) -> str | None:
  rank = 3 if kind == "images" else 1
  # Upstream names, and the "train-images.idx3-ubyte" spelling of some mirrors.
  for base in (f"{split}-{kind}-idx{rank}-ubyte", f"{split}-{kind}.idx{rank}-ubyte"):
    for suffix in (".gz", ""):
      path = os.path.join(folder, base + suffix)
      if os.path.isfile(path):
        return path
  return None


def _check_idx_split(images: np.ndarray, labels: np.ndarray, shape) -> tuple[np.ndarray, ...]:
  if images.dtype != np.uint8 or images.shape[1:] != shape[:2]:
    raise ValueError(
      f"IDX images must be uint8 [N, {shape[0]}, {shape[1]}], got {images.dtype} {images.shape}"
    )
  if labels.ndim != 1 or len(labels) != len(images):
    raise ValueError(f"IDX labels must be [{len(images)}] to match the images, got {labels.shape}")
  return images[..., None], labels.astype(np.int32)


# ------------------------------------------------------------------ CIFAR binary

_CIFAR_DIRS = {"cifar10": "cifar-10-batches-bin", "cifar100": "cifar-100-binary"}
_CIFAR_FILES = {
  "cifar10": ([f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"]),
  "cifar100": (["train.bin"], ["test.bin"]),
}


def _cifar_folder(name: str, folder: str) -> str | None:
  for candidate in (folder, os.path.join(folder, _CIFAR_DIRS[name])):
    files = [f for split in _CIFAR_FILES[name] for f in split]
    if all(os.path.isfile(os.path.join(candidate, f)) for f in files):
      return candidate
  return None
