"""The runtime: `config.runtime` checked, applied once per process by `setup`, and recorded."""

import ctypes
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrjax import runtime
from lrjax.runtime import compat, memory, spec, threads, xla_cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _clean_env(**extra) -> dict:
  """This process's environment without what would decide the runtime for a child."""
  drop = ("XLA_FLAGS", threads.POOL_ENV, "NPROC", "GLIBC_TUNABLES", "OMP_NUM_THREADS")
  env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("MALLOC_")}
  return {**env, "JAX_PLATFORMS": "cpu", **extra}


def _python(code: str, *args: str, **env) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, "-c", code, *args],
    cwd=ROOT,
    env=_clean_env(**env),
    capture_output=True,
    text=True,
  )


@pytest.mark.parametrize(
  "fields, message",
  [
    ({"convolutions": "mkl"}, "config.runtime.convolutions must be one of"),
    ({"threads": -1}, "config.runtime.threads must be an integer >= 0"),
    ({"threads": 1.5}, "config.runtime.threads must be an integer >= 0"),
    ({"threads": True}, "config.runtime.threads must be an integer >= 0"),
    ({"xla_cpu_tuning": "yes"}, "config.runtime.xla_cpu_tuning must be true or false"),
    ({"keep_freed_memory": 1}, "config.runtime.keep_freed_memory must be true or false"),
    ({"thread": 2}, "config.runtime has no field 'thread'"),
  ],
)
def test_a_bad_field_is_one_line_naming_it(fields, message):
  with pytest.raises(ValueError, match=message):
    runtime.Spec.of(fields)


def test_spec_of_a_whole_config_or_nothing():
  from lrjax.configs import smoke

  assert runtime.Spec.of(None) == runtime.Spec()
  assert runtime.Spec.of(smoke.get_config()) == runtime.Spec()
  with pytest.raises(ValueError, match="config.runtime must be a dict"):
    runtime.Spec.of("onednn")


def test_adopt_takes_the_recorded_values_for_auto_and_refuses_an_explicit_other():
  recorded = {"convolutions": "onednn", "threads": 3, "xla_cpu_tuning": True}
  assert runtime.Spec().adopt(recorded, "w") == runtime.Spec("onednn", 3, True, True)
  assert runtime.Spec("onednn", 3).adopt(recorded, "w") == runtime.Spec("onednn", 3)
  assert runtime.Spec().adopt(None, "w") == runtime.Spec()
  with pytest.raises(runtime.RuntimeMismatch, match=r"w started with config.runtime.threads=3;"):
    runtime.Spec(threads=2).adopt(recorded, "w")
  with pytest.raises(runtime.RuntimeMismatch, match="--config.runtime.convolutions=onednn"):
    runtime.Spec(convolutions="xla").adopt(recorded, "w")
  with pytest.raises(runtime.RuntimeMismatch, match="xla_cpu_tuning=True"):
    runtime.Spec(xla_cpu_tuning=False).adopt(recorded, "w")


def test_setup_here_is_what_the_tests_run_under():
  rt = runtime.setup()  # conftest.py set the process up first, at one thread (2 test workers)
  assert rt.threads == 1 and threads.xla_pool_size() == 1
  assert rt.xla_cpu_tuning and rt.platform == jax.default_backend()
  assert rt.spec().convolutions in ("onednn", "xla")
  assert xla_cpu.tuned(os.environ["XLA_FLAGS"])
  record = rt.record()
  assert set(spec.NUMERICS) <= set(record) and "platform" in record


def test_building_or_training_a_run_changes_nothing_about_the_process(tmp_path):
  from runs import build_run
  from test_compare_runner import study_config
  from test_train import smoke_config

  from lrjax import lr_finder
  from lrjax.compare import runner
  from lrjax.train import train_and_evaluate

  def process():
    return dict(os.environ), dict(jax.config.values), runtime.setup.__globals__["_process"]

  before = process()
  build_run(smoke_config())
  train_and_evaluate(smoke_config(num_epochs=1), str(tmp_path / "run"), quiet=True)
  lr_finder.find_lr(smoke_config(), str(tmp_path / "lr"), num_steps=8, quiet=True)
  config = study_config()
  config.study.seeds = [0]
  runner.compare(config, str(tmp_path / "study"), quiet=True)
  assert process() == before


def test_setup_changes_the_process_once_where_it_starts(tmp_path):
  code = (
    "import importlib, sys\n"
    "setup = importlib.import_module('lrjax.runtime.setup')\n"
    "calls, apply = [], setup._apply\n"
    "setup._apply = lambda *a: (calls.append(a), apply(*a))[1]\n"
    "from lrjax import cli\n"
    "try:\n"
    "  cli.main(['lrjax', 'compare', '--config', 'study_smoke', '--workdir', sys.argv[1],\n"
    "            '--config.study.seeds=(0,)', '--config.num_epochs=1',\n"
    "            '--config.study.order=(\"constant\",)',\n"
    '            \'--config.study.schedules={"constant": {"name": "constant",\'\n'
    "            ' \"value\": 0.1}}'])\n"
    "except SystemExit as e:\n"
    "  assert not e.code, e\n"
    "print('setups', len(calls))\n"
  )
  proc = _python(code, str(tmp_path))
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.split()[-2:] == ["setups", "1"]


def test_a_run_in_a_process_never_set_up_says_how_to_set_it_up():
  code = (
    "from lrjax.configs import smoke\n"
    "from lrjax.train import train_and_evaluate\n"
    "train_and_evaluate(smoke.get_config(), '/nonexistent/never')\n"
  )
  proc = _python(code)
  last = proc.stderr.strip().splitlines()[-1]
  assert proc.returncode == 1 and "RuntimeNotSetUp" in last
  assert "call lrjax.runtime.setup(config.runtime) once at its start" in last


def test_a_second_setup_with_other_process_settings_is_refused():
  with pytest.raises(runtime.RuntimeMismatch, match="only a new process can take"):
    runtime.setup({"threads": runtime.setup().threads + 1})
  with pytest.raises(runtime.RuntimeMismatch, match="xla_cpu_tuning=False"):
    runtime.setup({"xla_cpu_tuning": False})
  assert runtime.setup({"convolutions": "xla"}).convolutions == "xla"  # per model: allowed


_SETUP = """
import os, sys
from lrjax import runtime
from lrjax.runtime import threads
rt = runtime.setup({"threads": int(sys.argv[1]), "xla_cpu_tuning": sys.argv[2] == "1"})
print(rt.threads, threads.xla_pool_size(), os.environ["PJRT_NPROC"], rt.xla_cpu_tuning)
import jax, jax.numpy as jnp
f = lambda x, s: (jnp.maximum(x * s, 0.0).T, jnp.maximum(x * s, 0.0) * 3.0)
text = jax.jit(f).lower(jnp.ones((512, 256)), jnp.ones((256,))).compile().as_text()
print(text.count("maximum("))
"""


def test_setup_sizes_xla_pool_and_tunes_xla_before_it_starts():
  # Without multi-output fusion XLA:CPU copies `maximum` into both consumers' fusions.
  tuned = _python(_SETUP, "3", "1")
  assert tuned.returncode == 0, tuned.stderr[-2000:]
  assert tuned.stdout.split() == ["3", "3", "3", "True", "1"]
  default = _python(_SETUP, "1", "0")
  assert default.returncode == 0, default.stderr[-2000:]
  assert default.stdout.split() == ["1", "1", "1", "False", "2"]


def test_setup_after_jax_started_with_other_settings_is_one_line():
  code = "import jax.numpy as jnp; jnp.ones(2).block_until_ready()\n" + _SETUP
  proc = _python(code, "7", "1")
  assert proc.returncode == 1
  last = proc.stderr.strip().splitlines()[-1]
  assert "JAX started before lrjax.runtime.setup" in last and "7 XLA threads" in last


def test_flags_with_tuning_append_and_refuse_to_rewrite_the_users_options():
  assert (
    xla_cpu.flags_with_tuning("") == "--xla_backend_extra_options=" + xla_cpu.MULTI_OUTPUT_FUSION
  )
  mine = "--xla_dump_to=/tmp/x"
  assert xla_cpu.flags_with_tuning(mine).startswith(mine + " --xla_backend_extra_options=")
  with pytest.raises(ValueError, match="XLA_FLAGS sets xla_backend_extra_options already"):
    xla_cpu.flags_with_tuning("--xla_backend_extra_options=mine")


@pytest.mark.parametrize(
  "platforms, expected", [("cpu", True), ("CPU", True), ("cuda", False), ("cuda,cpu", False)]
)
def test_cpu_only_follows_jax_platforms(platforms, expected):
  assert xla_cpu.cpu_only({"JAX_PLATFORMS": platforms}) is expected


def _conv_bn_grad(x, w):
  y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  mean, var = y.mean((0, 1, 2), keepdims=True), y.var((0, 1, 2), keepdims=True)
  y = (y - mean) * jax.lax.rsqrt(var + 1e-5)
  return jnp.sum(jnp.maximum(y, 0.0) ** 2)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU-only options")
def test_compiler_options_send_convolutions_to_xla_and_keep_the_maths():
  options = xla_cpu.compiler_options(True)
  assert options == xla_cpu.CONVOLUTIONS_IN_XLA
  assert xla_cpu.compiler_options(False) == {}
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((8, 12, 12, 16)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 16, 16)) * 0.1, jnp.float32)
  grad = jax.value_and_grad(_conv_bn_grad, argnums=(0, 1))
  tuned = jax.jit(grad, compiler_options=options)
  text = tuned.lower(x, w).compile().as_text()
  conv_lines = [line for line in text.splitlines() if " convolution(" in line]
  assert conv_lines and not any("ynn" in line for line in conv_lines)
  (v1, (gx1, gw1)), (v0, (gx0, gw0)) = tuned(x, w), jax.jit(grad)(x, w)
  np.testing.assert_allclose(v1, v0, rtol=1e-5)
  np.testing.assert_allclose(gx1, gx0, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(gw1, gw0, rtol=1e-4, atol=1e-4)


def test_compiler_options_fall_back_to_defaults_for_an_unknown_option(monkeypatch):
  monkeypatch.setattr(xla_cpu, "CONVOLUTIONS_IN_XLA", {"xla_cpu_no_such_option": "1"})
  xla_cpu._known_options.cache_clear()
  try:
    assert xla_cpu.compiler_options(True) == {}
  finally:
    xla_cpu._known_options.cache_clear()


def test_compiled_count_falls_back():
  f = jax.jit(lambda x: x + 1)
  f(1.0)
  assert compat.compiled_count(f) == 1
  assert compat.compiled_count(lambda x: x) is None  # no private counter: no count


_FAULTS_PER_CALL = """
import resource, sys
from lrjax import runtime
runtime.setup({"keep_freed_memory": sys.argv[1] == "1"})
import jax, jax.numpy as jnp
import numpy as np
# A temporary buffer of 64 MiB per call (the flipped copy), freed when the call ends.
f = jax.jit(lambda x: jnp.flip(x * 2.0, 0) @ x[0])
x = jnp.ones((4096, 4096))
faults = []
for _ in range(60):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  f(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
# The heap grows to its peak over the first calls, now and then later: the typical call counts.
print(float(np.median(faults[20:])))
"""


def _faults_per_call(keep: bool) -> float:
  out = _python(_FAULTS_PER_CALL, "1" if keep else "0")
  assert out.returncode == 0, out.stderr[-2000:]
  return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"), reason="glibc only")
def test_keep_freed_memory_makes_later_calls_reuse_it():
  # 64 MiB is 16,384 pages: fresh memory for every call faults on each page it touches.
  kept, default = _faults_per_call(True), _faults_per_call(False)
  assert kept < 1000, (kept, default)
  assert kept < default / 10, (kept, default)


@pytest.mark.parametrize(
  "env", [{"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, {"MALLOC_ARENA_MAX_": "2"}]
)
def test_keep_freed_memory_leaves_a_users_malloc_settings_alone(env):
  assert not memory.keep_freed_memory(env)


def test_status_is_one_line():
  line = runtime.setup().status()
  assert line.startswith("runtime: convolutions ") and "\n" not in line
