"""Validation data: held out of the training split (or the dataset's own), never trained on,
never the test split; on every way a dataset comes in (built-in, the user's, tfds)."""

import json

import numpy as np
import pytest
from runs import build_run
from test_train import smoke_config

from lrjax.config.experiment import Experiment
from lrjax.data import datasets as data
from lrjax.data import validation
from lrjax.train import train_and_evaluate


def _rows(images: np.ndarray) -> set[bytes]:
  return {img.tobytes() for img in images}


@pytest.mark.parametrize("n, fraction", [(288, 32 / 288), (1000, 0.1), (7, 0.3), (50_000, 0.1)])
def test_held_out_indices_are_disjoint_and_cover_the_training_split(n, fraction):
  train, held = validation.hold_out_indices(n, fraction)
  assert len(held) == round(fraction * n) and len(train) + len(held) == n
  assert not np.intersect1d(train, held).size
  np.testing.assert_array_equal(np.union1d(train, held), np.arange(n))
  # Fixed, whatever the run: the same examples every time.
  np.testing.assert_array_equal(validation.hold_out_indices(n, fraction)[1], held)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, True, "0.1"])
def test_a_bad_fraction_is_one_line_naming_it(fraction):
  with pytest.raises(ValueError, match="validation_fraction must be a number in"):
    validation.hold_out_indices(10, fraction)


def _check_split(raw: data.Dataset, split: data.Dataset, fraction: float) -> None:
  """Index-level: the held-out examples are exactly the validation split, the rest exactly the
  training split, and the test split is the raw one, untouched."""
  train, held = validation.hold_out_indices(len(raw.train_labels), fraction)
  np.testing.assert_array_equal(split.validation_images, raw.train_images[held])
  np.testing.assert_array_equal(split.validation_labels, raw.train_labels[held])
  np.testing.assert_array_equal(split.train_images, raw.train_images[train])
  np.testing.assert_array_equal(split.test_images, raw.test_images)
  np.testing.assert_array_equal(split.test_labels, raw.test_labels)


def test_a_runs_batches_never_draw_a_validation_example():
  config = smoke_config(dataset="synthetic:16x16x3:288:64:4", validation_fraction=32 / 288)
  run = build_run(config)
  raw = data.load_dataset(config.dataset)
  _check_split(raw, run.dataset, 32 / 288)
  # Every batch of every epoch comes from the training split's rows (positions < 256), and the
  # validation images are none of them.
  assert run.num_train == 256 and run.steps_per_epoch == 8
  for epoch in range(3):
    order = run.epoch_order(epoch)
    assert order.max() < 256 and len(set(order)) == 256
  assert not _rows(run.dataset.validation_images) & _rows(run.dataset.train_images)


def test_the_validation_metrics_are_recorded_beside_the_test_ones(tmp_path):
  config = smoke_config(dataset="synthetic:16x16x3:288:64:4", validation_fraction=32 / 288)
  out = train_and_evaluate(config, str(tmp_path), quiet=True)
  assert {"final_validation_accuracy", "final_validation_loss", "best_epoch"} <= set(out)
  assert "best_test_accuracy" not in out  # test data names no best
  records = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
  assert all({"validation_loss", "validation_accuracy", "test_accuracy"} <= set(r) for r in records)
  best = max(records, key=lambda r: (r["validation_accuracy"], -r["epoch"]))
  assert out["best_epoch"] == best["epoch"]
  assert out["test_accuracy_at_best_epoch"] == best["test_accuracy"]
  assert json.load(open(tmp_path / "config.json"))["num_validation"] == 32


def test_without_validation_data_nothing_is_chosen(tmp_path):
  out = train_and_evaluate(smoke_config(), str(tmp_path), quiet=True)  # fraction 0
  assert "best_epoch" not in out and "final_validation_accuracy" not in out


def load_with_validation():
  """A user's loader with its own validation split."""
  rng = np.random.default_rng(1)
  images = rng.integers(0, 255, (120, 8, 8, 1), dtype=np.uint8)
  labels = rng.integers(0, 3, 120)
  return {
    "train_images": images[:64],
    "train_labels": labels[:64],
    "validation_images": images[64:96],
    "validation_labels": labels[64:96],
    "test_images": images[96:],
    "test_labels": labels[96:],
    "num_classes": 3,
  }


def load_without_validation():
  out = load_with_validation()
  del out["validation_images"], out["validation_labels"]
  return out


def load_half_a_validation():
  out = load_with_validation()
  del out["validation_labels"]
  return out


def test_a_users_validation_split_is_used_and_never_trained_on():
  config = smoke_config(
    dataset="test_validation:load_with_validation", batch_size=16, eval_batch_size=16
  )
  run = build_run(config)
  given = load_with_validation()
  np.testing.assert_array_equal(run.dataset.validation_images, given["validation_images"])
  np.testing.assert_array_equal(run.dataset.train_images, given["train_images"])
  assert run.num_train == 64
  config.validation_fraction = 0.25
  with pytest.raises(ValueError, match=r"has a validation split of its own: set --config"):
    build_run(config)


def test_a_users_dataset_without_one_gets_one_held_out():
  config = smoke_config(
    dataset="test_validation:load_without_validation",
    batch_size=16,
    eval_batch_size=16,
    validation_fraction=0.25,
  )
  run = build_run(config)
  raw = data.load_dataset(config.dataset)
  _check_split(raw, run.dataset, 0.25)
  with pytest.raises(ValueError, match=r"returned validation_images alone"):
    data.load_dataset("test_validation:load_half_a_validation")


def test_a_tfds_dataset_holds_out_or_names_its_split(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=40):
    raw = data.load_dataset("fashion_mnist", data_dir=str(tmp_path / "tfds"), source="tfds")
    _check_split(raw, validation.hold_out(raw, 0.25), 0.25)
    three = data.load_dataset(
      "mnist_corrupted/shot_noise", splits=("train", "test", "test"), download=False
    )
  assert three.has_validation and len(three.validation_labels) == 40
  config = smoke_config(validation_split="test")  # the test split as validation: refused
  config.test_split = "test"
  with pytest.raises(ValueError, match=r"config.validation_split='test' is the training or test"):
    Experiment.of(config)


def test_a_dataset_read_from_idx_files_holds_out_the_same_way(tmp_path):
  from test_data import write_mnist

  write_mnist(tmp_path, n_train=40, n_test=8)
  raw = data.load_dataset("mnist", data_dir=str(tmp_path), source="files")
  _check_split(raw, validation.hold_out(raw, 0.25), 0.25)
