"""lrjax.onednn in the runtime: which path a model gets, a missing or failed build, thread counts
that fix the bits, a device mesh, and training on both paths."""

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
from onednn_common import ON, ROOT, needs_onednn, python, rel

from lrjax import runtime
from lrjax.models import registry
from lrjax.onednn import build


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
  monkeypatch.setattr(build, "loaded", lambda: build.Unavailable("no oneDNN here"))
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
  # tiny has every layer kind of resnet20 (strided stages, padded shortcuts) at a fraction of
  # its compile time on four devices.
  for name, shape in (("tiny", (16, 16, 3)), ("convnet", (28, 28, 1))):
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
  proc = python(MESH_SCRIPT, JAX_NUM_CPU_DEVICES="4", JAX_PLATFORMS="cpu")
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  for name in ("tiny", "convnet"):
    xla, dnn = out[f"{name} xla"], out[f"{name} onednn"]
    assert dnn["calls"] > 0 and xla["calls"] == 0, name
    assert dnn["all_gathers"] <= xla["all_gathers"], name
    for a, b in zip(xla["grads"], dnn["grads"]):
      assert rel(jnp.asarray(a), jnp.asarray(b)) < 1e-4, name


TRAIN_SCRIPT = """
  import json, os, sys
  from lrjax import runtime
  from lrjax.configs import smoke
  from lrjax.train import train_and_evaluate
  config = smoke.get_config()
  config.model, config.dataset, config.augment = "tiny", "synthetic:16x16x3:512:256:4", False
  config.num_epochs, config.batch_size, config.eval_batch_size = 4, 32, 256
  config.runtime.convolutions = sys.argv[2]
  runtime.setup(config.runtime)
  out = []
  for seed in (0, 1):  # one process a path: its imports and compilations once
    config.seed = seed
    out.append(train_and_evaluate(config, os.path.join(sys.argv[1], str(seed)), quiet=True))
  accuracy = [o["final_test_accuracy"] for o in out]
  print(json.dumps({"accuracy": accuracy, "runtime": out[0]["runtime"]}))
"""


@needs_onednn
@pytest.mark.slow
def test_short_runs_reach_the_same_accuracy_on_both_paths(tmp_path):
  acc = {}
  for name in ("xla", "onednn"):
    proc = subprocess.run(
      [sys.executable, "-c", textwrap.dedent(TRAIN_SCRIPT), str(tmp_path / name), name],
      env={**os.environ, "PYTHONPATH": ROOT},
      capture_output=True,
      text=True,
      timeout=600,
      cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["runtime"]["convolutions"] == name
    acc[name] = out["accuracy"]
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
