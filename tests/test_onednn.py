"""lrjax.onednn's kernels: the same convolution as XLA's, forward, gradients and under vmap.

The oneDNN tests skip where the path is off (no oneDNN or compiler: `pip install 'lrjax[train]'`
on Linux x86-64); the fallback tests run everywhere. The runtime around the kernels (which path a
model gets, threads, devices) is tested in tests/test_onednn_runtime.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from onednn_common import DIMS, ONEDNN, needs_onednn, rel

from lrjax.models import registry
from lrjax.onednn import conv, ops

# (input shape NHWC, kernel shape HWIO, strides, padding): every layer of resnet20, convnet and
# tiny (at a small batch), the 1x1 projection and 7x7/2 stem of the larger ResNets, and odd cases.
LAYERS = [
  ((4, 32, 32, 3), (3, 3, 3, 16), (1, 1), "SAME"),  # resnet20 stem
  ((4, 32, 32, 16), (3, 3, 16, 16), (1, 1), "SAME"),
  ((4, 32, 32, 16), (3, 3, 16, 32), (2, 2), "SAME"),
  ((4, 16, 16, 32), (3, 3, 32, 32), (1, 1), "SAME"),
  ((4, 16, 16, 32), (3, 3, 32, 64), (2, 2), "SAME"),
  ((4, 8, 8, 64), (3, 3, 64, 64), (1, 1), "SAME"),
  ((4, 28, 28, 1), (3, 3, 1, 32), (1, 1), "SAME"),  # convnet
  ((4, 14, 14, 32), (3, 3, 32, 64), (1, 1), "SAME"),
  ((4, 7, 7, 64), (3, 3, 64, 128), (1, 1), "SAME"),
  ((4, 16, 16, 3), (3, 3, 3, 8), (1, 1), "SAME"),  # tiny
  ((4, 16, 16, 8), (3, 3, 8, 16), (2, 2), "SAME"),
  ((4, 8, 8, 16), (3, 3, 16, 16), (1, 1), "SAME"),
  ((4, 16, 16, 64), (1, 1, 64, 128), (2, 2), "SAME"),  # projection shortcut
  ((2, 32, 32, 3), (7, 7, 3, 16), (2, 2), [(3, 3), (3, 3)]),  # imagenet stem
  ((3, 9, 11, 5), (3, 2, 5, 7), (2, 3), [(1, 0), (2, 1)]),  # odd sizes, asymmetric padding
  ((2, 8, 8, 4), (3, 3, 4, 6), (1, 1), "VALID"),
]


def _operands(x_shape, w_shape, seed=0):
  kx, kw = jax.random.split(jax.random.PRNGKey(seed))
  return jax.random.normal(kx, x_shape), jax.random.normal(kw, w_shape)


def _loss(fn, strides, padding):
  def loss(x, w):
    y = fn(x, w, strides, padding, dimension_numbers=DIMS)
    return jnp.sum(jnp.sin(y))  # a cotangent that differs per element

  return loss


def _value_and_grads(fn, x, w, strides, padding):
  return jax.jit(jax.value_and_grad(_loss(fn, strides, padding), (0, 1)))(x, w)


# --- everywhere: which convolutions go to oneDNN, and the fallback -------------------------------


@pytest.mark.parametrize(
  "kwargs",
  [
    dict(rhs_dilation=(2, 2)),
    dict(lhs_dilation=(2, 2)),
    dict(padding=[(-1, 0), (0, 0)]),
    dict(dimension_numbers=("NCHW", "OIHW", "NCHW")),
  ],
)
def test_geometry_declines_what_the_handlers_do_not_run(kwargs):
  args = dict(
    window_strides=(1, 1),
    padding="SAME",
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=DIMS,
  )
  args.update(kwargs)
  assert conv.geometry((2, 8, 8, 4), (3, 3, 4, 4), **args) is None


def test_geometry_of_same_padding_matches_lax():
  g = conv.geometry((2, 32, 32, 16), (3, 3, 16, 32), (2, 2), "SAME", None, None, DIMS)
  assert g == conv.Geometry(2, 2, 0, 1, 0, 1, threads=1)


@pytest.mark.parametrize("groups", [1, 2])
def test_unsupported_convolutions_fall_back_to_xla_exactly(groups):
  x, w = _operands((2, 8, 8, 4), (3, 3, 4 // groups, 6))
  kw = dict(dimension_numbers=DIMS, feature_group_count=groups, rhs_dilation=(2, 2))
  ref = lax.conv_general_dilated(x, w, (1, 1), "SAME", **kw)
  np.testing.assert_array_equal(conv.Convolution(2)(x, w, (1, 1), "SAME", **kw), ref)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_a_bad_thread_count_is_one_line(threads):
  with pytest.raises(ValueError, match=r"threads must be a positive integer"):
    conv.Convolution(threads)


# --- the oneDNN path: the same maths as XLA's ----------------------------------------------------


@needs_onednn
@pytest.mark.parametrize("x_shape, w_shape, strides, padding", LAYERS)
def test_forward_and_gradients_equal_xla(x_shape, w_shape, strides, padding):
  x, w = _operands(x_shape, w_shape)
  ref = _value_and_grads(lax.conv_general_dilated, x, w, strides, padding)
  got = _value_and_grads(ONEDNN, x, w, strides, padding)
  y_ref = lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=DIMS)
  y = jax.jit(lambda x, w: ONEDNN(x, w, strides, padding, dimension_numbers=DIMS))(x, w)
  assert rel(y_ref, y) < 1e-5
  for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
    assert rel(a, b) < 1e-4


@needs_onednn
def test_the_step_calls_onednn_with_no_transposes():
  x, w = _operands((4, 16, 16, 8), (3, 3, 8, 16))
  hlo = jax.jit(jax.grad(_loss(ONEDNN, (1, 1), "SAME"), (0, 1))).lower(x, w)
  text = hlo.compile().as_text()
  for target in ops.TARGETS:
    assert target in text
  assert " convolution(" not in text and " transpose(" not in text


@needs_onednn
@pytest.mark.parametrize("kernel_batched", [True, False])
def test_vmap_equals_xla(kernel_batched):
  x, w = _operands((3, 4, 10, 10, 8), (3, 3, 3, 8, 6))
  w = w if kernel_batched else w[0]
  in_axes = (0, 0 if kernel_batched else None)

  def grads(fn):
    return jax.jit(jax.vmap(jax.value_and_grad(_loss(fn, (2, 2), "SAME"), (0, 1)), in_axes))(x, w)

  for a, b in zip(
    jax.tree.leaves(grads(lax.conv_general_dilated)),
    jax.tree.leaves(grads(ONEDNN)),
  ):
    assert a.shape == b.shape and rel(a, b) < 1e-4


@needs_onednn
def test_nested_vmap_equals_xla():
  x, w = _operands((2, 3, 2, 6, 6, 4), (2, 3, 3, 4, 5))

  def f(fn):
    inner = jax.vmap(lambda x, w: fn(x, w, (1, 1), "SAME", dimension_numbers=DIMS), (0, None))
    return jax.jit(jax.vmap(inner))(x, w)

  assert rel(f(lax.conv_general_dilated), f(ONEDNN)) < 1e-5


def _model_grads(name: str, shape, xla: bool):
  model = registry.create_model(name, 10, convolution=lax.conv_general_dilated if xla else ONEDNN)
  variables = registry.init_variables(model, jax.random.PRNGKey(0), shape)
  x = jax.random.normal(jax.random.PRNGKey(1), (8, *shape))
  labels = jnp.arange(8) % 10

  def loss(params):
    logits, _ = model.apply(
      {"params": params, "batch_stats": variables["batch_stats"]}, x, mutable=["batch_stats"]
    )
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

  return jax.jit(jax.value_and_grad(loss))(variables["params"])


@needs_onednn
@pytest.mark.parametrize(
  "name, shape", [("resnet20", (32, 32, 3)), ("convnet", (28, 28, 1)), ("tiny", (16, 16, 3))]
)
def test_model_gradients_equal_xla(name, shape):
  ref, got = _model_grads(name, shape, xla=True), _model_grads(name, shape, xla=False)
  assert abs(float(ref[0]) - float(got[0])) < 1e-4 * abs(float(ref[0]))
  for path_, a in jax.tree_util.tree_leaves_with_path(ref[1]):
    b = got[1]
    for key in path_:
      b = b[key.key]
    # Relative to the layer's largest gradient: BatchNorm makes some entries ~0 by construction.
    assert rel(a, b) < 1e-4, jax.tree_util.keystr(path_)


@needs_onednn
def test_bfloat16_runs_or_falls_back():
  x, w = _operands((4, 8, 8, 8), (3, 3, 8, 16))
  x, w = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
  ref = _value_and_grads(lax.conv_general_dilated, x, w, (1, 1), "SAME")
  got = _value_and_grads(ONEDNN, x, w, (1, 1), "SAME")
  for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
    assert a.dtype == b.dtype == jnp.bfloat16
    assert rel(a.astype(jnp.float32), b.astype(jnp.float32)) < 2e-2
