"""Image-classification datasets held in memory as uint8 arrays, read by name or from the user.

The datasets are small (CIFAR-10 is 184 MB as uint8), so a whole dataset is loaded once and kept
as arrays; batches are taken by index from `epoch_permutation`, which depends on (seed, epoch)
only, so every schedule in a comparison sees the same data order and a resumed run recomputes
its position. The images stay uint8 until the jitted step (`lrjax.data.preprocess`).

Sources, none of which needs TensorFlow:

* IDX files (MNIST, Fashion-MNIST), gzipped or raw. Fashion-MNIST defaults to the folder of
  Debian's `dataset-fashion-mnist` package, whose re-compressed files tfds' checksums reject.
* The CIFAR binary archives (`cifar-10-batches-bin`, `cifar-100-binary`), extracted.
* `tfds.data_source` on data already prepared in a tfds data_dir (tfds is imported only here).
* "synthetic": deterministic random images with class-dependent colours, for tests and benchmarks.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

import numpy as np

from lrjax.data import user
from lrjax.data.readers import read_cifar_binary, read_idx
from lrjax.import_path import is_import_path

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
SOURCES = ("auto", "files", "tfds")

# name -> (num_classes, image shape)
_SPECS = {
  "mnist": (10, (28, 28, 1)),
  "fashion_mnist": (10, (28, 28, 1)),
  "cifar10": (10, (32, 32, 3)),
  "cifar100": (100, (32, 32, 3)),
}
_IDX_FILES = (
  "the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte "
  "and t10k-labels-idx1-ubyte (.gz or raw)"
)
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/{}-binary.tar.gz, extract it and pass data_dir="
_HOW_TO_GET = {
  "fashion_mnist": (
    f"Install it with `apt-get install dataset-fashion-mnist` (files in {FASHION_MNIST_DIR}), "
    f"or pass data_dir=<folder> holding {_IDX_FILES} from "
    "https://github.com/zalandoresearch/fashion-mnist."
  ),
  "mnist": f"Pass data_dir=<folder> holding {_IDX_FILES}.",
  "cifar10": "Download " + _CIFAR_URL.format("cifar-10") + "<folder holding cifar-10-batches-bin>.",
  "cifar100": "Download " + _CIFAR_URL.format("cifar-100") + "<folder holding cifar-100-binary>.",
}
_TFDS_HINT = (
  " Or prepare it once with tensorflow_datasets where TensorFlow and the network are available "
  "(file_format='array_record') and pass that tfds data_dir as data_dir."
)


class DatasetNotFoundError(ValueError):
  """A dataset is not available locally; the message says how to get it."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """Train, test and (optional) validation splits as host arrays, plus per-channel statistics
  of the train images.

  `mean` and `std` are float32 of shape [C], in pixel units (0..255), for `normalize`. A channel
  with std below one grey level gets std 1 so that a constant channel does not divide by zero.
  The validation split is never trained on; `hold_out` carves one from the training split.
  """

  train_images: np.ndarray  # uint8 [N, H, W, C]
  train_labels: np.ndarray  # int32 [N]
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  name: str
  validation_images: np.ndarray | None = None  # uint8 [M, H, W, C]; None: no validation split
  validation_labels: np.ndarray | None = None
  mean: np.ndarray = dataclasses.field(init=False)
  std: np.ndarray = dataclasses.field(init=False)

  def __post_init__(self):
    if (self.validation_images is None) != (self.validation_labels is None):
      raise ValueError("validation_images and validation_labels must be given together")
    splits = ("train", "test") + (() if self.validation_images is None else ("validation",))
    for split in splits:
      images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
      if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(
          f"{split}_images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}"
        )
      if labels.shape != images.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
          f"{split}_labels must be integers of shape {images.shape[:1]}, got "
          f"{labels.dtype} {labels.shape}"
        )
      if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
        raise ValueError(
          f"{split}_labels must lie in [0, {self.num_classes}), got "
          f"[{labels.min()}, {labels.max()}]"
        )
      object.__setattr__(self, f"{split}_labels", labels.astype(np.int32, copy=False))
    for split in splits[1:]:
      shape = getattr(self, f"{split}_images").shape[1:]
      if self.train_images.shape[1:] != shape:
        raise ValueError(
          f"train and {split} images differ in shape: {self.train_images.shape[1:]} vs {shape}"
        )
    mean, std = _channel_stats(self.train_images)
    object.__setattr__(self, "mean", mean)
    object.__setattr__(self, "std", std)

  @property
  def image_shape(self) -> tuple[int, int, int]:
    """(H, W, C): the model's input shape without the batch axis."""
    return tuple(self.train_images.shape[1:])

  @property
  def has_validation(self) -> bool:
    return self.validation_labels is not None and len(self.validation_labels) > 0


def _channel_stats(images: np.ndarray, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
  # A per-channel histogram of the 256 grey levels gives exact moments, in bounded memory.
  c = images.shape[-1]
  hist = np.zeros((c, 256), np.int64)
  for i in range(0, len(images), chunk):
    part = images[i : i + chunk]
    hist += np.stack([np.bincount(part[..., k].ravel(), minlength=256) for k in range(c)])
  levels = np.arange(256, dtype=np.float64)
  count = np.maximum(hist.sum(1), 1)
  mean = hist @ levels / count
  std = np.sqrt(np.maximum(hist @ np.square(levels) / count - np.square(mean), 0.0))
  return mean.astype(np.float32), np.maximum(std, 1.0).astype(np.float32)


def dataset_names() -> tuple[str, ...]:
  return (*_SPECS, "synthetic")


def load_dataset(
  name: str,
  data_dir: str | None = None,
  source: str = "auto",
  *,
  download: bool = False,
  splits: tuple[str, ...] = ("train", "test"),
) -> Dataset:
  """Loads a dataset fully into host memory.

  Args:
    name: "cifar10", "cifar100", "fashion_mnist", "mnist", or "synthetic" (see
      `synthetic_dataset`; "synthetic:HxWxC[:TRAIN[:TEST[:CLASSES]]]" sets its size, e.g.
      "synthetic:32x32x3:50000:10000" for a CIFAR-10-sized benchmark); any other
      tensorflow-datasets image classification dataset with `image` and `label` features; or
      "package.module:function", a loader of the user's own arrays (see `lrjax.data.user`).
    data_dir: a folder with the dataset's files (IDX files; the CIFAR binary folder or its
      parent), or a tfds data_dir. Fashion-MNIST defaults to `FASHION_MNIST_DIR`.
    source: "files" (IDX / CIFAR binary), "tfds" (`tfds.data_source`), or "auto": files when
      they are found in data_dir (or the default folder), tfds otherwise.
    download: let tfds download and prepare the dataset (needs TensorFlow and the network).
    splits: the (train, test) split names, for a tfds dataset, and optionally a third: its
      validation split (any tfds split text, e.g. "validation" or "train[90%:]").

  Raises:
    DatasetNotFoundError: (a ValueError) the data is not available; the message says how to
      get it.
    ValueError: an unknown name or source, or a corrupt file.
  """
  if name == "synthetic" or name.startswith("synthetic:"):
    return synthetic_dataset(*_parse_synthetic(name))
  if is_import_path(name):
    arrays = user.load_arrays(name)  # its own validation split, if it returns one
    try:
      return Dataset(**arrays, name=name)
    except ValueError as e:
      raise ValueError(f"config.dataset={name!r}: {e}") from None
  if name not in _SPECS:
    return _load_tfds(name, data_dir, download, splits)
  if source not in SOURCES:
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
  folder = data_dir or (FASHION_MNIST_DIR if name == "fashion_mnist" else None)
  if source == "files" or (source == "auto" and _has_files(name, folder)):
    if folder is None:
      raise DatasetNotFoundError(f"{name}: source='files' needs data_dir. {_HOW_TO_GET[name]}")
    return _load_files(name, folder)
  return _load_tfds(name, data_dir, download, splits)


def _has_files(name: str, folder: str | None) -> bool:
  if folder is None or not os.path.isdir(folder):
    return False
  if name in ("mnist", "fashion_mnist"):
    return _find_idx(folder, "train", "images") is not None
  return _cifar_folder(name, folder) is not None


def _load_files(name: str, folder: str) -> Dataset:
  num_classes, shape = _SPECS[name]
  if name in ("mnist", "fashion_mnist"):
    arrays = {}
    for split in ("train", "t10k"):
      for kind in ("images", "labels"):
        path = _find_idx(folder, split, kind)
        if path is None:
          raise DatasetNotFoundError(
            f"{name}: no {split}-{kind} IDX file in {folder!r}. {_HOW_TO_GET[name]}"
          )
        arrays[split, kind] = read_idx(path)
    splits = [
      _check_idx_split(arrays[s, "images"], arrays[s, "labels"], shape) for s in ("train", "t10k")
    ]
  else:
    found = _cifar_folder(name, folder)
    if found is None:
      raise DatasetNotFoundError(
        f"{name}: no CIFAR binary files in {folder!r}. {_HOW_TO_GET[name]}"
      )
    label_bytes = 2 if name == "cifar100" else 1
    splits = [
      read_cifar_binary([os.path.join(found, f) for f in files], label_bytes)
      for files in _CIFAR_FILES[name]
    ]
  (train_x, train_y), (test_x, test_y) = splits
  return Dataset(train_x, train_y, test_x, test_y, num_classes, name)


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


# ------------------------------------------------------------------ tfds


def _load_tfds(name: str, data_dir: str | None, download: bool, splits: tuple[str, ...]) -> Dataset:
  where = f"data_dir={data_dir!r}" if data_dir else "the default tfds data_dir"
  how = _HOW_TO_GET.get(name, "")
  try:
    import tensorflow_datasets as tfds  # optional: training machines may not have it
  except ImportError:
    known = f" {how}" if how else " Install lrjax[tfds] to read it through tensorflow_datasets."
    raise DatasetNotFoundError(
      f"config.dataset={name!r}: no local files found in {where} and tensorflow_datasets is not "
      f"installed.{known}"
    ) from None
  arrays, num_classes = [], _SPECS.get(name, (None,))[0]
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
      num_classes = _tfds_num_classes(src, name)
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
  return Dataset(*arrays[:4], num_classes=num_classes, name=name, **validation)


def _tfds_num_classes(src: Any, name: str) -> int:
  try:
    features = src.dataset_info.features
    return int(features["label"].num_classes)
  except Exception:  # not an image classification dataset: say what it must have
    raise ValueError(
      f"config.dataset={name!r}: a tensorflow-datasets dataset needs `image` and `label` "
      "(ClassLabel) features"
    ) from None


# ------------------------------------------------------------------ synthetic


def _parse_synthetic(name: str) -> tuple[Any, ...]:
  m = re.fullmatch(r"synthetic(?::(\d+)x(\d+)x(\d+)((?::\d+){0,3}))?", name)
  if m is None:
    raise ValueError(
      f"name must be 'synthetic' or 'synthetic:HxWxC[:TRAIN[:TEST[:CLASSES]]]', got {name!r}"
    )
  if m[1] is None:
    return ()
  return ((int(m[1]), int(m[2]), int(m[3])), *map(int, m[4].split(":")[1:]))


def synthetic_dataset(
  shape: tuple[int, int, int] = (32, 32, 3),
  num_train: int = 1024,
  num_test: int = 256,
  num_classes: int = 10,
  seed: int = 0,
) -> Dataset:
  """Deterministic random images whose class sets a per-channel colour offset.

  Pixel = uniform noise in [0, 127] + the class's offset in [0, 127] per channel (offsets evenly
  spaced, shuffled per channel), so a global average pool separates the classes and random
  crops and flips keep them learnable. Labels are balanced.
  """
  for arg, value in (("num_train", num_train), ("num_test", num_test)):
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"{arg} must be a positive integer, got {value!r}")
  if not isinstance(num_classes, int) or not 2 <= num_classes <= 128:
    raise ValueError(f"num_classes must be an integer in [2, 128], got {num_classes!r}")
  if len(shape) != 3 or min(shape) < 1:
    raise ValueError(f"shape must be (H, W, C) with positive sizes, got {shape!r}")
  rng = np.random.Generator(np.random.PCG64(seed))
  levels = np.round(np.linspace(0, 127, num_classes)).astype(np.uint8)
  offsets = np.stack([rng.permutation(levels) for _ in range(shape[2])], axis=-1)

  def split(n):
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int32)
    images = np.empty((n, *shape), np.uint8)
    for i in range(0, n, 4096):  # bounded temporaries for benchmark-sized sets
      noise = rng.integers(0, 128, (min(4096, n - i), *shape), dtype=np.uint8)
      images[i : i + 4096] = noise + offsets[labels[i : i + 4096], None, None, :]
    return images, labels

  train, test = split(num_train), split(num_test)
  name = "synthetic:{}x{}x{}:{}:{}:{}".format(*shape, num_train, num_test, num_classes)
  return Dataset(*train, *test, num_classes=num_classes, name=name)


# ------------------------------------------------------------------ order and preprocessing


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """The order of the `n` training examples in `epoch`, a function of (seed, epoch) only."""
  for arg, value in (("seed", seed), ("epoch", epoch), ("n", n)):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
      raise ValueError(f"{arg} must be a non-negative integer, got {value!r}")
  return np.random.Generator(np.random.PCG64([int(seed), int(epoch)])).permutation(int(n))
