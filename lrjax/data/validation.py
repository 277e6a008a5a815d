"""A validation split held out of the training split: fixed, and the same for every run.

`config.validation_fraction` of the training examples, chosen by a permutation of a fixed seed
(`HOLD_OUT_SEED`, no run's own), become the validation split: never trained on, the same for every
arm and seed of a study, and disjoint from the test split, which is another array altogether.
A dataset that brings a validation split of its own (a tfds split, or the user's
`validation_images`) keeps it instead.
"""

from __future__ import annotations

import numpy as np

from lrjax.data.datasets import Dataset

# Fixed, and no run's seed: every arm and seed of a study holds out the same examples.
HOLD_OUT_SEED = 20_240_517


def hold_out_indices(n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
  """Splits `range(n)` into training and validation indices, the same for every run.

  `round(fraction * n)` of the indices are held out, chosen by a permutation of a fixed seed
  (`HOLD_OUT_SEED`).

  Args:
    n: the number of training examples, a positive integer.
    fraction: the fraction to hold out, in [0, 1).

  Returns:
    (training indices, validation indices), both sorted, disjoint, together all of `range(n)`.

  Raises:
    ValueError: for an `n` or a `fraction` out of range.

  Example:
    >>> from lrjax.data.validation import hold_out_indices
    >>> train, held = hold_out_indices(10, 0.2)
    >>> len(train), len(held), sorted(train.tolist() + held.tolist()) == list(range(10))
    (8, 2, True)
  """
  if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
    raise ValueError(f"validation_fraction must be a number in [0, 1), got {fraction!r}")
  if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
    raise ValueError(f"n must be a positive integer, got {n!r}")
  held = round(fraction * n)
  order = np.random.Generator(np.random.PCG64(HOLD_OUT_SEED)).permutation(int(n))
  return np.sort(order[held:]), np.sort(order[:held])


def hold_out(dataset: Dataset, fraction: float) -> Dataset:
  """`dataset` with `fraction` of its training examples moved to a validation split.

  The held-out examples are those of `hold_out_indices`; the test split is unchanged.

  Args:
    dataset: a `Dataset` without a validation split (unless `fraction` is 0).
    fraction: the fraction of the training examples to hold out, in [0, 1).

  Returns:
    A new `Dataset` with a validation split, or `dataset` itself for a `fraction` of 0.

  Raises:
    ValueError: naming `config.validation_fraction`, if `dataset` brings a validation split of its
      own, or the fraction leaves no validation or no training example.

  Example:
    >>> from lrjax.data.datasets import synthetic_dataset
    >>> from lrjax.data.validation import hold_out
    >>> data = hold_out(synthetic_dataset((2, 2, 1), num_train=10, num_test=4), 0.3)
    >>> len(data.train_labels), len(data.validation_labels), len(data.test_labels)
    (7, 3, 4)
  """
  if fraction == 0:
    return dataset
  if dataset.validation_images is not None:
    raise ValueError(
      f"config.validation_fraction={fraction!r}, but {dataset.name} has a validation split of "
      "its own: set --config.validation_fraction=0 to use it"
    )
  train, held = hold_out_indices(len(dataset.train_labels), fraction)
  if len(held) == 0 or len(train) == 0:
    raise ValueError(
      f"config.validation_fraction={fraction!r} of {len(dataset.train_labels)} training examples "
      "leaves no validation or no training example"
    )
  return Dataset(
    dataset.train_images[train],
    dataset.train_labels[train],
    dataset.test_images,
    dataset.test_labels,
    dataset.num_classes,
    dataset.name,
    dataset.train_images[held],
    dataset.train_labels[held],
  )
