"""Image-classification datasets held in memory as uint8 arrays, read by name or from the user.

The datasets are small (CIFAR-10 is 184 MB as uint8), so a whole dataset is loaded once and kept
as arrays; batches are taken by index from `epoch_permutation`, which depends on (seed, epoch)
only, so every schedule in a comparison sees the same data order and a resumed run recomputes
its position. The images stay uint8 until the jitted step (`lrjax.data.preprocess`).

Sources, none of which needs TensorFlow:

* IDX files (MNIST, Fashion-MNIST), gzipped or raw. Fashion-MNIST defaults to the folder of
  Debian's `dataset-fashion-mnist` package, whose re-compressed files tfds' checksums reject.
* The CIFAR binary archives (`cifar-10-batches-bin`, `cifar-100-binary`), extracted.
* `tfds.data_source` on data already prepared in a tfds data_dir.
* "synthetic": deterministic random images with class-dependent colours, for tests and benchmarks.

`lrjax.data.from_files` reads the first two, `lrjax.data.from_tfds` (which alone imports tfds) the
third.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from lrjax.data import from_files, from_tfds, user
from lrjax.data.errors import DatasetNotFoundError as DatasetNotFoundError
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
# One message for both ways in: the `data_dir` argument, which configs set as `config.data_dir`.
_SET_DATA_DIR = "set data_dir (config.data_dir; --config.data_dir=FOLDER on the command line) to"
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/{}-binary.tar.gz, extract it and " + _SET_DATA_DIR
_HOW_TO_GET = {
  "fashion_mnist": (
    f"Install it with `apt-get install dataset-fashion-mnist` (files in {FASHION_MNIST_DIR}), "
    f"or {_SET_DATA_DIR} a folder holding {_IDX_FILES} from "
    "https://github.com/zalandoresearch/fashion-mnist."
  ),
  "mnist": f"To use it, {_SET_DATA_DIR} a folder holding {_IDX_FILES}.",
  "cifar10": f"Download {_CIFAR_URL.format('cifar-10')} the folder holding cifar-10-batches-bin.",
  "cifar100": f"Download {_CIFAR_URL.format('cifar-100')} the folder holding cifar-100-binary.",
}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """Train, test and (optional) validation splits as host arrays, plus per-channel statistics
  of the train images.

  `mean` and `std` are float32 of shape [C], in pixel units (0..255), for `normalize`. A channel
  with std below one grey level gets std 1 so that a constant channel does not divide by zero.
  The validation split is never trained on; `hold_out` carves one from the training split.
  Labels are stored as int32.

  Attributes:
    train_images: uint8 [N, H, W, C].
    train_labels: integers in [0, num_classes), shape [N].
    test_images: uint8 [M, H, W, C], of the training images' H, W and C.
    test_labels: integers in [0, num_classes), shape [M].
    num_classes: the number of classes.
    name: the dataset's name, as `load_dataset` was given it.
    validation_images: uint8 [V, H, W, C], or None for no validation split.
    validation_labels: integers of shape [V], given together with `validation_images`.
    mean: the train images' per-channel mean, float32 [C] (computed, not given).
    std: their per-channel standard deviation, at least 1, float32 [C] (computed, not given).

  Raises:
    ValueError: for images that are not uint8 [N, H, W, C], labels of another length or outside
      [0, num_classes), splits of different image shapes, or a validation split given by half.

  Example:
    >>> from lrjax.data.datasets import Dataset
    >>> images = np.full((4, 2, 2, 1), 100, np.uint8)
    >>> data = Dataset(images, np.array([0, 1, 0, 1]), images[:2], np.array([1, 0]), 2, "mine")
    >>> data.image_shape, data.has_validation, data.mean, data.std
    ((2, 2, 1), False, array([100.], dtype=float32), array([1.], dtype=float32))
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
    """Whether the dataset has a validation split with at least one example."""
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
  """The datasets `load_dataset` knows by name (it also reads any tfds image dataset).

  Example:
    >>> from lrjax.data.datasets import dataset_names
    >>> dataset_names()
    ('mnist', 'fashion_mnist', 'cifar10', 'cifar100', 'synthetic')
  """
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

  Returns:
    The `Dataset`, every split in host memory.

  Raises:
    DatasetNotFoundError: (a ValueError) the data is not available; the message says how to
      get it.
    ValueError: an unknown name or source, or a corrupt file.

  Example:
    >>> from lrjax.data.datasets import load_dataset
    >>> data = load_dataset("synthetic:8x8x3:40:20:4")
    >>> data.train_images.shape, data.test_images.shape, data.num_classes
    ((40, 8, 8, 3), (20, 8, 8, 3), 4)
  """
  if name == "synthetic" or name.startswith("synthetic:"):
    return synthetic_dataset(*_parse_synthetic(name))
  if is_import_path(name):
    arrays = user.load_arrays(name)  # its own validation split, if it returns one
    try:
      return Dataset(**arrays, name=name)
    except ValueError as e:
      raise ValueError(f"config.dataset={name!r}: {e}") from None
  num_classes, shape = _SPECS.get(name, (None, None))
  how = _HOW_TO_GET.get(name, "")
  if name not in _SPECS:
    return Dataset(**from_tfds.load(name, data_dir, download, splits, num_classes, how))
  if source not in SOURCES:
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
  folder = data_dir or (FASHION_MNIST_DIR if name == "fashion_mnist" else None)
  if source == "files" or (source == "auto" and from_files.has_files(name, folder)):
    if folder is None:
      raise DatasetNotFoundError(f"{name}: source='files' needs data_dir. {how}")
    return Dataset(**from_files.load(name, folder, num_classes, shape, how))
  return Dataset(**from_tfds.load(name, data_dir, download, splits, num_classes, how))


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

  Args:
    shape: (H, W, C) of an image, positive sizes.
    num_train: training examples, a positive integer.
    num_test: test examples, a positive integer.
    num_classes: an integer in [2, 128].
    seed: the seed of the images, labels and offsets (the same seed, the same arrays).

  Returns:
    A `Dataset`, named after its arguments so that `load_dataset` reads the name back
    ("synthetic:HxWxC:TRAIN:TEST:CLASSES").

  Raises:
    ValueError: for a size or a number of classes out of range.

  Example:
    >>> from lrjax.data.datasets import synthetic_dataset
    >>> data = synthetic_dataset((4, 4, 1), num_train=6, num_test=2, num_classes=3)
    >>> data.name, data.train_images.dtype, np.bincount(data.train_labels).tolist()
    ('synthetic:4x4x1:6:2:3', dtype('uint8'), [2, 2, 2])
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
  """The order of the `n` training examples in `epoch`, a function of (seed, epoch) only.

  Args:
    seed: the run's seed, an integer >= 0.
    epoch: the 0-based epoch, an integer >= 0.
    n: the number of training examples, an integer >= 0.

  Returns:
    A permutation of `range(n)`, the same for the same (seed, epoch), whatever the run.

  Raises:
    ValueError: if an argument is not a non-negative integer.

  Example:
    >>> from lrjax.data.datasets import epoch_permutation
    >>> order = epoch_permutation(seed=0, epoch=3, n=5)
    >>> sorted(order.tolist()), bool((order == epoch_permutation(0, 3, 5)).all())
    ([0, 1, 2, 3, 4], True)
  """
  for arg, value in (("seed", seed), ("epoch", epoch), ("n", n)):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
      raise ValueError(f"{arg} must be a non-negative integer, got {value!r}")
  return np.random.Generator(np.random.PCG64([int(seed), int(epoch)])).permutation(int(n))
