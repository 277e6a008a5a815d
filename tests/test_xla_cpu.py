"""lrjax's XLA:CPU settings: when they are set, that XLA uses them, and that the maths is kept."""

import ctypes
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrjax.train import jax_compat, xla_cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def fresh(monkeypatch):
  """As if JAX had not started its backends yet (in this process it has)."""
  monkeypatch.setattr(jax_compat, "backends_started", lambda: False)
  monkeypatch.setattr(xla_cpu, "_cpu_only", lambda environ: True)


def test_tune_appends_to_the_users_flags(fresh):
  env = {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
  assert xla_cpu.tune(env)
  assert env["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {xla_cpu.MULTI_OUTPUT_FUSION}"
  empty = {}
  assert xla_cpu.tune(empty)
  assert empty["XLA_FLAGS"] == xla_cpu.MULTI_OUTPUT_FUSION


@pytest.mark.parametrize(
  "env",
  [
    {"XLA_FLAGS": "--xla_backend_extra_options=mine"},
    {"LRJAX_XLA_CPU_TUNING": "0"},
    {"LRJAX_XLA_CPU_TUNING": "off"},
  ],
)
def test_tune_leaves_a_users_choice_alone(fresh, env):
  before = dict(env)
  assert not xla_cpu.tune(env)
  assert env == before


def test_tune_is_a_no_op_once_backends_started(monkeypatch):
  monkeypatch.setattr(xla_cpu, "_cpu_only", lambda environ: True)
  env = {}
  assert not xla_cpu.tune(env)  # this process has run JAX already
  assert env == {}


@pytest.mark.parametrize(
  "platforms, expected", [("cpu", True), ("CPU", True), ("cuda", False), ("cuda,cpu", False)]
)
def test_cpu_only_follows_jax_platforms(platforms, expected):
  assert xla_cpu._cpu_only({"JAX_PLATFORMS": platforms}) is expected


_PRODUCER_COUNT = """
import sys
from lrjax.train import xla_cpu
print(xla_cpu.tune() if sys.argv[1] == "tune" else "default")
import jax, jax.numpy as jnp
f = lambda x, s: (jnp.maximum(x * s, 0.0).T, jnp.maximum(x * s, 0.0) * 3.0)
text = jax.jit(f).lower(jnp.ones((512, 256)), jnp.ones((256,))).compile().as_text()
print(text.count("maximum("))
"""


def test_tune_makes_xla_compute_a_shared_producer_once():
  # Without multi-output fusion XLA:CPU copies `maximum` into both consumers' fusions.
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_cpu.OPT_OUT)}
  env["JAX_PLATFORMS"] = "cpu"

  def count(mode):
    out = subprocess.run(
      [sys.executable, "-c", _PRODUCER_COUNT, mode],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      check=True,
    ).stdout.split()
    return out[0], int(out[1])

  assert count("tune") == ("True", 1)
  assert count("default") == ("default", 2)


def _conv_bn_grad(x, w):
  y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  mean, var = y.mean((0, 1, 2), keepdims=True), y.var((0, 1, 2), keepdims=True)
  y = (y - mean) * jax.lax.rsqrt(var + 1e-5)
  return jnp.sum(jnp.maximum(y, 0.0) ** 2)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU-only options")
def test_compiler_options_send_convolutions_to_xla_and_keep_the_maths():
  options = xla_cpu.compiler_options()
  assert options == xla_cpu.CONVOLUTIONS_IN_XLA
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
  xla_cpu.compiler_options.cache_clear()
  try:
    assert xla_cpu.compiler_options() == {}
  finally:
    xla_cpu.compiler_options.cache_clear()


def test_compiler_options_respect_the_opt_out(monkeypatch):
  monkeypatch.setenv(xla_cpu.OPT_OUT, "0")
  xla_cpu.compiler_options.cache_clear()
  try:
    assert xla_cpu.compiler_options() == {}
  finally:
    xla_cpu.compiler_options.cache_clear()


def test_private_jax_helpers_fall_back(monkeypatch):
  import jax

  f = jax.jit(lambda x: x + 1)
  f(1.0)
  assert jax_compat.compiled_count(f) == 1
  assert jax_compat.compiled_count(lambda x: x) is None  # no private counter: no count
  assert jax_compat.backends_started() is True  # this process has run JAX
  import jax._src.xla_bridge as bridge

  monkeypatch.delattr(bridge, "backends_are_initialized")
  assert jax_compat.backends_started() is False


_FAULTS_PER_CALL = """
import resource
from lrjax.train import xla_cpu
xla_cpu.tune()
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


def _faults_per_call(opt_out: bool) -> float:
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_cpu.OPT_OUT)}
  env = {k: v for k, v in env.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
  env["JAX_PLATFORMS"] = "cpu"
  if opt_out:
    env[xla_cpu.OPT_OUT] = "0"
  out = subprocess.run(
    [sys.executable, "-c", _FAULTS_PER_CALL], cwd=ROOT, env=env, capture_output=True, text=True
  )
  assert out.returncode == 0, out.stderr[-2000:]
  return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"), reason="glibc only")
def test_tune_makes_later_calls_reuse_freed_memory():
  # 64 MiB is 16,384 pages: fresh memory for every call faults on each page it touches.
  tuned, default = _faults_per_call(False), _faults_per_call(True)
  assert tuned < 1000, (tuned, default)
  assert tuned < default / 10, (tuned, default)


@pytest.mark.parametrize(
  "env", [{"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, {"MALLOC_ARENA_MAX_": "2"}]
)
def test_keep_freed_memory_leaves_a_users_malloc_settings_alone(env):
  assert not xla_cpu.keep_freed_memory(env)
