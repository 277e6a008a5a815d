"""A user's own model and data through the config: `config.model` / `config.dataset` as
"module:attribute", trained by the engine as the built-in ones are; each bad input is one line."""

import json

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from runs import build_run
from test_train import smoke_config

from lrjax.data import datasets as data
from lrjax.train import train_and_evaluate


class TinyMLP(nn.Module):
  """A user's model: no BatchNorm, a dropout layer, a `dtype` it accepts."""

  num_classes: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(32, dtype=self.dtype)(x))
    x = nn.Dropout(0.1, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype)(x)


class NormNet(nn.Module):
  """A user's model with BatchNorm and no `dtype` field."""

  num_classes: int

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.Conv(8, (3, 3))(x)
    x = nn.BatchNorm(use_running_average=not train)(x)
    return nn.Dense(self.num_classes)(jnp.mean(nn.relu(x), axis=(1, 2)))


def make_norm_net(num_classes):
  return NormNet(num_classes=num_classes)


def load_stripes():
  """A user's loader: 3 classes of 8x8x1 noise images, whose brightness is the class."""
  rng = np.random.default_rng(0)

  def split(n):
    labels = rng.integers(0, 3, n)
    images = rng.integers(0, 60, (n, 8, 8, 1)).astype(np.uint8)
    return images + (80 * labels).astype(np.uint8)[:, None, None, None], labels

  (a, b), (c, d) = split(192), split(64)
  return {
    "train_images": a,
    "train_labels": b,
    "test_images": c,
    "test_labels": d,
    "num_classes": 3,
  }


def load_floats():
  d = load_stripes()
  return {**d, "train_images": d["train_images"].astype(np.float32)}


def load_nchw():
  d = load_stripes()
  return {**d, "test_labels": d["test_labels"][:, None]}


def load_no_classes():
  return {k: v for k, v in load_stripes().items() if k != "num_classes"}


def load_out_of_range():
  return {**load_stripes(), "num_classes": 2}


def not_a_mapping():
  return [1, 2, 3]


WRONG_WIDTH = NormNet  # built with num_classes from the data; see the shape test below


def _config(**changes):
  config = smoke_config(num_epochs=2, **changes)
  config.schedule = {"name": "constant", "value": 0.05}
  return config


@pytest.mark.parametrize("model", ["test_user_inputs:TinyMLP", "test_user_inputs:make_norm_net"])
def test_a_users_model_trains_and_resumes_like_a_built_in_one(tmp_path, model):
  out = train_and_evaluate(_config(model=model), str(tmp_path), quiet=True)
  assert out["final_test_accuracy"] > 0.5  # 4 classes: chance is 0.25
  stats = out["state"].batch_stats
  assert bool(stats) is (model.endswith("make_norm_net"))  # BatchNorm statistics where it has them
  again = train_and_evaluate(_config(model=model), str(tmp_path), quiet=True)  # all done
  assert again["params_sha256"] == out["params_sha256"]


def test_a_users_dataset_trains(tmp_path):
  config = _config(dataset="test_user_inputs:load_stripes", batch_size=32, eval_batch_size=32)
  out = train_and_evaluate(config, str(tmp_path), quiet=True)
  resolved = json.load(open(tmp_path / "config.json"))
  assert resolved["num_train"] == 192 and resolved["steps_per_epoch"] == 6
  assert out["final_test_accuracy"] > 0.5  # 3 classes: chance is 1/3
  run = build_run(config)
  assert run.dataset.num_classes == 3 and run.dataset.image_shape == (8, 8, 1)


def test_both_together(tmp_path):
  config = _config(model="test_user_inputs:TinyMLP", dataset="test_user_inputs:load_stripes")
  out = train_and_evaluate(config, str(tmp_path), quiet=True)
  assert out["state"].params["Dense_1"]["kernel"].shape == (32, 3)


@pytest.mark.parametrize(
  "changes, message",
  [
    (
      {"model": "no_such_module_xyz:Net"},
      r"config.model=.*cannot import module 'no_such_module_xyz'",
    ),
    ({"model": "test_user_inputs:Missing"}, r"config.model=.*has no attribute 'Missing'"),
    ({"model": "test_user_inputs:load_stripes"}, r"config.model=.*(built|flax.linen Module)"),
    ({"model": "json:dumps"}, r"config.model=.*could not be built"),
    ({"model": "resnet9000"}, r"config.model"),
    ({"dataset": "no_such_module_xyz:load"}, r"config.dataset=.*cannot import module"),
    ({"dataset": "test_user_inputs:missing"}, r"config.dataset=.*has no attribute 'missing'"),
    ({"dataset": "test_user_inputs:load_floats"}, r"config.dataset=.*train_images must be uint8"),
    ({"dataset": "test_user_inputs:load_nchw"}, r"config.dataset=.*test_labels must be integers"),
    ({"dataset": "test_user_inputs:load_no_classes"}, r"config.dataset=.*returned no \['num_"),
    ({"dataset": "test_user_inputs:load_out_of_range"}, r"config.dataset=.*labels must lie in"),
    ({"dataset": "test_user_inputs:not_a_mapping"}, r"config.dataset=.*must return a mapping"),
    ({"dataset": "test_user_inputs:TinyMLP"}, r"config.dataset=.*failed"),
  ],
)
def test_bad_user_inputs_say_which_field_and_what_was_found(changes, message):
  with pytest.raises(ValueError, match=message) as info:
    build_run(_config(**changes))
  assert "\n" not in str(info.value)  # one line


def test_a_model_with_the_wrong_number_of_outputs(monkeypatch):
  import test_user_inputs as me

  monkeypatch.setattr(me, "WRONG_WIDTH", lambda num_classes: NormNet(num_classes=num_classes + 1))
  with pytest.raises(ValueError, match=r"must return logits of shape \(batch, 4\), got \(2, 5\)"):
    build_run(_config(model="test_user_inputs:WRONG_WIDTH"))


def test_any_tfds_image_dataset_with_its_splits():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=24):
    ds = data.load_dataset("mnist_corrupted/shot_noise", splits=("train", "test"))
  assert ds.num_classes == 10 and ds.image_shape == (28, 28, 1) and len(ds.train_labels) == 24
  with pytest.raises(data.DatasetNotFoundError, match=r"config.dataset='no_such_tfds_set'"):
    data.load_dataset("no_such_tfds_set")


class NNXNet(nnx.Module):
  """A user's Flax NNX model: BatchNorm and Dropout, called with `train` as linen models are."""

  def __init__(self, num_classes: int, image_shape: tuple, *, rngs: nnx.Rngs):
    self.conv = nnx.Conv(image_shape[-1], 8, (3, 3), rngs=rngs)
    self.norm = nnx.BatchNorm(8, rngs=rngs)
    self.drop = nnx.Dropout(0.1, rngs=rngs)
    self.out = nnx.Linear(8, num_classes, rngs=rngs)

  def __call__(self, x, train: bool = False):
    x = nnx.relu(self.norm(self.conv(x), use_running_average=not train))
    return self.out(self.drop(jnp.mean(x, axis=(1, 2)), deterministic=not train))


class NNXWide(NNXNet):
  def __init__(self, num_classes: int, image_shape: tuple, *, rngs: nnx.Rngs):
    super().__init__(num_classes + 1, image_shape, rngs=rngs)


class NNXNoRngs(nnx.Module):
  def __init__(self, num_classes: int):
    self.num_classes = num_classes


def test_an_nnx_model_trains_with_its_batch_stats_and_dropout_and_resumes(tmp_path):
  config = _config(model="test_user_inputs:NNXNet")
  out = train_and_evaluate(config, str(tmp_path), quiet=True)
  assert out["final_test_accuracy"] > 0.5  # 4 classes: chance is 0.25
  state = out["state"]
  assert set(state.params) == {"conv", "norm", "out"} and set(state.batch_stats) == {"norm"}
  assert float(np.abs(np.asarray(state.batch_stats["norm"]["mean"])).sum()) > 0  # updated
  again = train_and_evaluate(config, str(tmp_path), quiet=True)  # all done: read back
  assert again["params_sha256"] == out["params_sha256"]


@pytest.mark.parametrize(
  "model, message",
  [
    ("test_user_inputs:NNXWide", r"must return logits of shape \(batch, 4\), got \(2, 5\)"),
    ("test_user_inputs:NNXNoRngs", r"nnx.Module whose __init__ takes no `rngs`"),
  ],
)
def test_a_bad_nnx_model_is_one_line_naming_config_model(model, message):
  with pytest.raises(ValueError, match=message) as info:
    build_run(_config(model=model))
  assert "\n" not in str(info.value) and "config.model" in str(info.value)
