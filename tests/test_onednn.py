"""lrjax.onednn: the same convolution as XLA's, through oneDNN where it builds, XLA's otherwise.

The oneDNN tests skip where the path is off (no oneDNN or compiler: `pip install 'lrjax[train]'`
on Linux x86-64); the fallback tests run everywhere.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from lrjax import runtime
from lrjax.models import registry
from lrjax.onednn import build, conv, ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIMS = ("NHWC", "HWIO", "NHWC")
RUNTIME = runtime.setup()
ON = RUNTIME.convolutions == "onednn"
needs_onednn = pytest.mark.skipif(not ON, reason=RUNTIME.status())
ONEDNN = conv.Convolution(RUNTIME.threads, bf16=bool(getattr(build.load(), "bf16", False)))

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


def _rel(a, b) -> float:
  return float(jnp.max(jnp.abs(a - b)) / jnp.maximum(jnp.max(jnp.abs(a)), 1e-30))


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


def _python(code: str, **env) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, "-c", textwrap.dedent(code)],
    env={**os.environ, "PYTHONPATH": ROOT, **env},
    capture_output=True,
    text=True,
    timeout=600,
    cwd=ROOT,
  )


def test_the_runtime_chooses_the_path_per_model():
  x = jnp.zeros((2, 8, 8, 3))

  def calls(convolutions):
    rt = runtime.setup({"convolutions": convolutions})
    m = registry.create_model("tiny", 4, convolution=rt.convolution())
    v = registry.init_variables(m, jax.random.PRNGKey(0), (8, 8, 3))
    return (
      jax.jit(lambda v, x: m.apply(v, x, train=False)).lower(v, x).as_text().count("lrjax_onednn")
    )

  assert calls("xla") == 0
  assert (calls("auto") > 0) == ON
  assert runtime.setup({"convolutions": "xla"}).status().startswith("runtime: convolutions XLA,")


def test_missing_onednn_gives_a_reason_not_an_error(monkeypatch, tmp_path):
  monkeypatch.setattr(build, "_prefixes", lambda: [tmp_path])
  build.load.cache_clear()
  try:
    result = build.load()
  finally:
    build.load.cache_clear()
  assert isinstance(result, build.Unavailable)
  assert "lrjax[onednn-cpu]" in result.reason


def test_onednn_asked_for_where_it_cannot_run_is_one_line(monkeypatch):
  monkeypatch.setattr(build, "load", lambda: build.Unavailable("no oneDNN here"))
  with pytest.raises(runtime.RuntimeMismatch, match="convolutions='onednn', but no oneDNN here"):
    runtime.setup({"convolutions": "onednn"})
  rt = runtime.setup({"convolutions": "auto"})
  assert rt.convolutions == "xla" and rt.why_xla == "no oneDNN here"
  assert "oneDNN off: no oneDNN here" in rt.status()


def test_failed_build_gives_a_reason(tmp_path):
  bad = tmp_path / "bad.cc"
  bad.write_text("this is not C++\n")
  error = build._compile([build.find_compiler() or "c++", "-shared", str(bad)], tmp_path / "x.so")
  assert error and not (tmp_path / "x.so").exists()


# --- the oneDNN path: the same maths as XLA's ----------------------------------------------------


@needs_onednn
@pytest.mark.parametrize("x_shape, w_shape, strides, padding", LAYERS)
def test_forward_and_gradients_equal_xla(x_shape, w_shape, strides, padding):
  x, w = _operands(x_shape, w_shape)
  ref = _value_and_grads(lax.conv_general_dilated, x, w, strides, padding)
  got = _value_and_grads(ONEDNN, x, w, strides, padding)
  y_ref = lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=DIMS)
  y = jax.jit(lambda x, w: ONEDNN(x, w, strides, padding, dimension_numbers=DIMS))(x, w)
  assert _rel(y_ref, y) < 1e-5
  for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
    assert _rel(a, b) < 1e-4


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
    assert a.shape == b.shape and _rel(a, b) < 1e-4


@needs_onednn
def test_nested_vmap_equals_xla():
  x, w = _operands((2, 3, 2, 6, 6, 4), (2, 3, 3, 4, 5))

  def f(fn):
    inner = jax.vmap(lambda x, w: fn(x, w, (1, 1), "SAME", dimension_numbers=DIMS), (0, None))
    return jax.jit(jax.vmap(inner))(x, w)

  assert _rel(f(lax.conv_general_dilated), f(ONEDNN)) < 1e-5


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
    assert _rel(a, b) < 1e-4, jax.tree_util.keystr(path_)


MESH_SCRIPT = """
  import json, re
  import jax, jax.numpy as jnp
  from jax.sharding import NamedSharding, PartitionSpec as P
  from lrjax import runtime
  from lrjax.models import registry
  rt = runtime.setup()

  mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  batch, whole = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
  out = {}
  for name, shape in (("tiny", (16, 16, 3)), ("resnet20", (32, 32, 3)), ("convnet", (28, 28, 1))):
    for on in ("xla", "onednn"):
      model = registry.create_model(
        name, 10, convolution=runtime.setup({"convolutions": on}).convolution()
      )
      variables = registry.init_variables(model, jax.random.PRNGKey(0), shape)
      x = jax.random.normal(jax.random.PRNGKey(1), (8, *shape))

      def loss(params, x):
        logits, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                                mutable=["batch_stats"])
        return jnp.mean(jnp.sin(logits))

      def grads(params, x):  # and a population of 2 models: vmap over params, the same images
        pop = jax.tree.map(lambda p: jnp.stack([p, 2 * p]), params)
        return jax.grad(loss)(params, x), jax.vmap(jax.grad(loss), (0, None))(pop, x)

      compiled = jax.jit(grads, in_shardings=(whole, batch)).lower(variables["params"], x).compile()
      text = compiled.as_text()
      out[f"{name} {on}"] = {
        "grads": [a.tolist() for a in jax.tree.leaves(compiled(variables["params"], x))],
        "all_gathers": len(re.findall(r" all-gather(-start)?\\(", text)),
        "calls": text.count("lrjax_onednn"),
      }
  print(json.dumps(out))
"""


@needs_onednn
def test_four_device_mesh_keeps_the_batch_sharded_and_equals_xla():
  proc = _python(MESH_SCRIPT, JAX_NUM_CPU_DEVICES="4", JAX_PLATFORMS="cpu")
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  for name in ("tiny", "resnet20", "convnet"):
    xla, dnn = out[f"{name} xla"], out[f"{name} onednn"]
    assert dnn["calls"] > 0 and xla["calls"] == 0, name
    assert dnn["all_gathers"] <= xla["all_gathers"], name
    for a, b in zip(xla["grads"], dnn["grads"]):
      assert _rel(jnp.asarray(a), jnp.asarray(b)) < 1e-4, name


@needs_onednn
def test_bfloat16_runs_or_falls_back():
  x, w = _operands((4, 8, 8, 8), (3, 3, 8, 16))
  x, w = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
  ref = _value_and_grads(lax.conv_general_dilated, x, w, (1, 1), "SAME")
  got = _value_and_grads(ONEDNN, x, w, (1, 1), "SAME")
  for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
    assert a.dtype == b.dtype == jnp.bfloat16
    assert _rel(a.astype(jnp.float32), b.astype(jnp.float32)) < 2e-2


TRAIN_SCRIPT = """
  import json, sys
  from lrjax.configs import smoke
  from lrjax.train import train_and_evaluate
  config = smoke.get_config()
  config.model, config.dataset, config.augment = "tiny", "synthetic:16x16x3:512:256:4", False
  config.num_epochs, config.batch_size, config.eval_batch_size = 4, 32, 256
  config.seed, config.runtime.convolutions = int(sys.argv[2]), sys.argv[3]
  out = train_and_evaluate(config, sys.argv[1], quiet=True)
  print(json.dumps({"accuracy": out["final_test_accuracy"], "runtime": out["runtime"]}))
"""


@needs_onednn
@pytest.mark.slow
def test_short_runs_reach_the_same_accuracy_on_both_paths(tmp_path):
  acc = {}
  for name in ("xla", "onednn"):
    acc[name] = []
    for seed in (0, 1):
      proc = subprocess.run(
        [
          sys.executable,
          "-c",
          textwrap.dedent(TRAIN_SCRIPT),
          str(tmp_path / f"{name}{seed}"),
          str(seed),
          name,
        ],
        env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
      )
      assert proc.returncode == 0, proc.stderr[-3000:]
      out = json.loads(proc.stdout.strip().splitlines()[-1])
      assert out["runtime"]["convolutions"] == name
      acc[name].append(out["accuracy"])
  # The same seeds on both paths: the runs differ only by float rounding in the convolutions.
  assert np.mean(acc["onednn"]) > 0.5 and np.mean(acc["xla"]) > 0.5
  assert abs(np.mean(acc["onednn"]) - np.mean(acc["xla"])) < 0.1, acc


GRAD_BITS = """
  import hashlib, sys
  import numpy as np
  from lrjax import runtime
  rt = runtime.setup({"threads": int(sys.argv[1])})
  import jax, jax.numpy as jnp
  from lrjax.models import registry
  m = registry.create_model("resnet20", 10, convolution=rt.convolution())
  x = jax.random.normal(jax.random.PRNGKey(0), (32, 32, 32, 3))
  v = m.init(jax.random.PRNGKey(1), x, train=False)
  def loss(p):
    out, _ = m.apply({"params": p, "batch_stats": v["batch_stats"]}, x, train=True,
                     mutable=["batch_stats"])
    return (out ** 2).mean()
  g = jax.jit(jax.grad(loss))(v["params"])
  data = b"".join(np.asarray(a).tobytes() for a in jax.tree.leaves(g))
  print(rt.convolutions, hashlib.sha256(data).hexdigest())
"""


def _grad_bits(threads: int, prefix: list[str] = (), **env) -> str:
  clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PJRT_NPROC")}
  proc = subprocess.run(
    [*prefix, sys.executable, "-c", textwrap.dedent(GRAD_BITS), str(threads)],
    env={**clean, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu", **env},
    capture_output=True,
    text=True,
    timeout=600,
    cwd=ROOT,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout.split()[-2:]


@needs_onednn
@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="taskset needs Linux")
def test_the_runtime_threads_fix_the_bits_whatever_the_process_gets():
  # oneDNN's weight gradient sums per thread: its bits follow the thread count. The runtime's
  # count holds whatever OpenMP's environment (Ray gives a 1-CPU task OMP_NUM_THREADS=1) or the
  # CPUs the process may use (Slurm, taskset) say.
  base = _grad_bits(2)
  assert base[0] == "onednn"
  assert _grad_bits(2, OMP_NUM_THREADS="1") == base
  if len(os.sched_getaffinity(0)) > 1 and shutil.which("taskset"):
    assert _grad_bits(2, ["taskset", "-c", str(min(os.sched_getaffinity(0)))]) == base
  assert _grad_bits(1) != base  # the count does matter: it is part of the runtime
