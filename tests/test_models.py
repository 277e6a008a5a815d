"""Model registry, parameter counts against published ones, shapes and dtypes."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrjax.models import convnet, registry

# Threefry's key-splitting loops make XLA:CPU take seconds to compile even a tiny init; the
# RngBitGenerator-based "rbg" keys compile several times faster and are as good for tests.
KEY = jax.random.key(0, impl="rbg")


@functools.cache
def tiny_variables(stem, input_shape):
  """Real parameters of the tiny model, initialised once per (stem, input shape)."""
  model = registry.create_model("tiny", 7, stem=stem)
  return jax.jit(lambda k: registry.init_variables(model, k, input_shape))(KEY)


def abstract_variables(model, input_shape):
  """Shapes only: `eval_shape` traces init without computing, so even ResNet-101 is instant."""
  return jax.eval_shape(lambda: registry.init_variables(model, jax.random.key(0), input_shape))


@pytest.mark.parametrize(
  "name, num_classes, stem, input_shape, expected",
  [
    # torchvision's ResNet-50 / ResNet-18 have exactly these counts (ImageNet, 1000 classes).
    ("resnet50", 1000, "imagenet", (224, 224, 3), 25_557_032),
    ("resnet18", 1000, "imagenet", (224, 224, 3), 11_689_512),
    # CIFAR stem, 10 classes: 23.5M and 11.2M (kuangliu/pytorch-cifar).
    ("resnet50", 10, "cifar", (32, 32, 3), 23_520_842),
    ("resnet18", 10, "cifar", (32, 32, 3), 11_173_962),
    # He et al. 2016, Table 6: 0.27M, 0.46M, 0.85M.
    ("resnet20", 10, "cifar", (32, 32, 3), 269_722),
    ("resnet32", 10, "cifar", (32, 32, 3), 464_154),
    ("resnet56", 10, "cifar", (32, 32, 3), 853_018),
    # The Keras tutorial's (9, 9, 9) / (64, 64, 128, 256) pre-activation net: about 0.87M.
    ("preact_resnet_tutorial", 10, "cifar", (32, 32, 3), 873_872),
  ],
)
def test_param_counts(name, num_classes, stem, input_shape, expected):
  model = registry.create_model(name, num_classes, stem=stem)
  variables = abstract_variables(model, input_shape)
  assert registry.count_params(variables["params"]) == expected
  assert set(variables) == {"params", "batch_stats"}


def test_tiny_is_tiny():
  variables = abstract_variables(registry.create_model("tiny", 10), (32, 32, 3))
  assert 1_000 < registry.count_params(variables["params"]) < 10_000


@pytest.mark.parametrize(
  "stem, input_shape", [("cifar", (32, 32, 3)), ("cifar", (28, 28, 1)), ("imagenet", (32, 32, 3))]
)
def test_tiny_forward(stem, input_shape):
  model = registry.create_model("tiny", 7, stem=stem)
  variables = tiny_variables(stem, input_shape)
  x = np.random.default_rng(1).normal(size=(4, *input_shape)).astype(np.float32)
  train_apply = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))
  logits, updates = train_apply(variables, x)
  assert logits.shape == (4, 7) and logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits))
  assert jax.tree.structure(updates["batch_stats"]) == jax.tree.structure(variables["batch_stats"])
  # Training mode moves the running statistics; evaluation mode uses them and mutates nothing.
  old, new = jax.tree.leaves(variables["batch_stats"]), jax.tree.leaves(updates["batch_stats"])
  assert any(not np.allclose(a, b) for a, b in zip(old, new))
  eval_logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  assert eval_logits.shape == (4, 7) and np.all(np.isfinite(eval_logits))


def test_bfloat16_computes_in_bf16_with_float32_params():
  model = registry.create_model("tiny", 7, dtype=jnp.bfloat16)
  # The compute dtype does not change parameter shapes or dtypes: reuse float32 ones.
  shapes = abstract_variables(model, (28, 28, 1))
  assert {leaf.dtype for leaf in jax.tree.leaves(shapes)} == {jnp.dtype(jnp.float32)}
  variables = tiny_variables("cifar", (28, 28, 1))
  assert jax.tree.structure(shapes) == jax.tree.structure(variables)
  x = jnp.ones((2, 28, 28, 1))
  apply = lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"])
  logits, updates = jax.jit(apply)(variables, x)
  assert logits.dtype == jnp.float32 and np.all(np.isfinite(logits))
  assert {leaf.dtype for leaf in jax.tree.leaves(updates)} == {jnp.dtype(jnp.float32)}
  assert "bf16[2,28,28,8]" in str(jax.make_jaxpr(apply)(variables, x))


def test_zero_init_of_last_bn_scale():
  block = tiny_variables("cifar", (32, 32, 3))["params"]["BasicBlock_0"]
  assert np.all(block["BatchNorm_1"]["scale"] == 0) and np.all(block["BatchNorm_0"]["scale"] == 1)


def test_resnet20_follows_the_paper():
  """Option-A shortcuts (no projection parameters) and plain BN init, as He et al."""
  params = abstract_variables(registry.create_model("resnet20", 10), (32, 32, 3))["params"]
  assert not any(
    "proj" in "/".join(map(str, path))
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]
  )
  assert registry._MODELS["resnet20"].keywords["zero_init_residual"] is False


def test_bottleneck_projection_params_present():
  params = abstract_variables(registry.create_model("resnet50", 10), (32, 32, 3))["params"]
  assert "conv_proj" in params["BottleneckBlock_0"]
  assert params["BottleneckBlock_0"]["conv_proj"]["kernel"].shape == (1, 1, 64, 256)


def test_model_names():
  names = registry.model_names()
  for name in (
    "resnet18",
    "resnet50",
    "resnet20",
    "resnet32",
    "resnet56",
    "preact_resnet_tutorial",
    "tiny",
  ):
    assert name in names


def test_unknown_name_lists_known_ones():
  with pytest.raises(ValueError, match="resnet50.*got 'resnet51'"):
    registry.create_model("resnet51", 10)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_bad_num_classes(bad):
  with pytest.raises(ValueError, match="num_classes"):
    registry.create_model("tiny", bad)


def test_bad_stem():
  with pytest.raises(ValueError, match="stem must be one of .* got 'vit'"):
    registry.create_model("tiny", 10, stem="vit")


def test_count_params_on_arrays_and_shapes():
  tree = {"a": jnp.zeros((2, 3)), "b": [jax.ShapeDtypeStruct((4,), jnp.float32)]}
  assert registry.count_params(tree) == 10


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (2, 7, 9, 3), (3, 2, 6, 6, 4)])
def test_max_pool_2x2_equals_flax_in_value_and_gradient(shape):
  import flax.linen as nn

  def flax_pool(x):
    y = nn.max_pool(x.reshape(-1, *x.shape[-3:]), (2, 2), strides=(2, 2))
    return y.reshape(*x.shape[:-3], *y.shape[1:])

  # Continuous random values: no window holds its maximum twice, so both gradients are exact.
  x = jnp.asarray(np.random.default_rng(0).standard_normal(shape), jnp.float32)
  np.testing.assert_array_equal(convnet.max_pool_2x2(x), flax_pool(x))

  def grad(pool):
    return jax.grad(lambda x: jnp.sum(pool(x) ** 2))(x)

  np.testing.assert_array_equal(grad(convnet.max_pool_2x2), grad(flax_pool))
