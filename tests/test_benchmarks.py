"""The prepared accelerator benchmark runs end to end (tiny mode) without ml_collections or tfds."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(FMNIST), reason=f"needs Fashion-MNIST in {FMNIST}")
def test_gpu_script_dry_run_needs_neither_ml_collections_nor_tfds(tmp_path):
  # The accelerator image has neither: shadow them with modules that refuse to import.
  for name in ("ml_collections", "tensorflow_datasets"):
    (tmp_path / "blocked" / name).mkdir(parents=True)
    (tmp_path / "blocked" / name / "__init__.py").write_text(
      f"raise ImportError('{name} is not on the accelerator image')\n"
    )
  env = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": os.pathsep.join([str(tmp_path / "blocked"), ROOT]),
  }
  out = tmp_path / "gpu.json"
  proc = subprocess.run(
    [sys.executable, os.path.join(ROOT, "benchmarks", "gpu.py"), "--tiny", "--out", str(out)],
    cwd=tmp_path,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stdout + proc.stderr
  result = json.loads(out.read_text())
  for key in ("throughput_fp32", "throughput_bf16"):
    assert result[key]["images_per_second"] > 0
  assert result["population"]["population_over_sequential"] > 0
  assert 0.0 <= result["fashion_mnist_epoch"]["test_accuracy"] <= 1.0


sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def test_conv_variants_compute_the_same_convolution():
  import jax
  import jax.numpy as jnp
  import numpy as np
  from conv_variants import conv, conv_im2col, conv_shifted, weight_grad_einsum

  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((2, 6, 6, 3)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 3, 4)), jnp.float32)
  ref = conv(x, w)
  np.testing.assert_allclose(conv_im2col(x, w), ref, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(conv_shifted(x, w), ref, rtol=1e-4, atol=1e-4)
  dw = jax.vjp(conv, x, w)[1](ref)[1]
  np.testing.assert_allclose(weight_grad_einsum(x, ref), dw, rtol=1e-4, atol=1e-3)


def test_profile_finds_every_convolution_of_the_step():
  import profile_step
  import training

  config = training.bench_config("tiny", "synthetic:8x8x3:64:32:4")
  config.batch_size = 16
  r = profile_step.profile(config, n=1)  # on XLA's convolutions, whatever this process runs
  import jax

  from lrjax.models import registry

  model = registry.create_model("tiny", 4)
  params = jax.eval_shape(
    lambda: model.init(jax.random.PRNGKey(0), jax.numpy.zeros((1, 8, 8, 3)), train=False)
  )["params"]
  kernels = sum(leaf.ndim == 4 for leaf in jax.tree.leaves(params))
  # Each convolution runs three times in a step: forward, input gradient and weight gradient,
  # except that nothing needs the gradient of the input image.
  assert kernels > 1 and r["convolutions"] == 3 * kernels - 1
  assert r["step_ms"] > 0 and 0 < r["convolution_ms"]


def test_cpu_flags_measures_both_settings_in_their_own_processes():
  import cpu_flags

  r = cpu_flags.measure(rounds=1, n=1, models={"tiny": "synthetic:8x8x3:256:32:4"})["tiny"]
  assert r["tuned_step_ms"] > 0 and r["default_step_ms"] > 0
  assert r["tuned_over_default"] == r["tuned_step_ms"] / r["default_step_ms"]


def test_host_overhead_drives_the_loops_epoch_as_the_engine_does():
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  try:
    import training
  finally:
    sys.path.pop(0)
  r = training.compilations_and_overhead(model="tiny", rounds=1)
  assert r["first_run_compilations"] in (0, 1) and r["second_run_new_compilations"] == 0
  assert r["host_overhead_ratio"] > 0 and r["steps_per_epoch"] > 0


def test_onednn_builds_table_and_a_root_without_onednn(tmp_path):
  import onednn_builds

  with pytest.raises(SystemExit, match="ROOT must hold include/oneapi/dnnl"):
    onednn_builds.measure(str(tmp_path), processes=1)
  ips = {"oneDNN, installed": [100.0, 300.0, 200.0], "oneDNN, ROOT": [150.0], "PyTorch": [1.0]}
  result = {
    "builds": {"oneDNN, installed": "convolutions: oneDNN 3.13.2", "oneDNN, ROOT": "oneDNN 3.2"},
    "processes": 3,
    "rounds": 9,
    "models": {"resnet20": ips},
  }
  md = onednn_builds.markdown(result)
  assert "- oneDNN, ROOT: `oneDNN 3.2`" in md
  assert "| resnet20 | 200 (100-300) | 150 (150-150) | 1 (1-1) | 0.75 |" in md


def test_fresh_processes_alternate_and_collect_the_last_number(tmp_path):
  from timing import in_fresh_processes

  log = tmp_path / "order"
  commands = [
    (k, ["-c", f"open({str(log)!r}, 'a').write('{k}'); print('x', {v})"], None)
    for k, v in (("a", 1), ("b", 2.5))
  ]
  assert in_fresh_processes(commands, 3) == {"a": [1.0] * 3, "b": [2.5] * 3}
  assert log.read_text() == "abbaab"


def test_tuning_grid_table():
  import tuning_grid

  result = {
    "runtime": "runtime: convolutions XLA, 2 threads, tuned, cpu",
    "arm": "linear",
    "rounds": 3,
    "models": {
      "convnet": {
        "points": ["lr_1", "lr_2"],
        "population_ms": 12.0,
        "sequential_ms": 10.0,
        "ratios": [1.3, 1.2, 1.1],
      }
    },
  }
  md = tuning_grid.markdown(result)
  assert "the grid of `linear` in `study_fashion_mnist:tuned` (2 points)" in md
  assert "| convnet | 12 ms | 10 ms | 1.20 |" in md


def test_compile_cache_table_alternates_and_gives_the_ratio(monkeypatch):
  import compile_cache

  calls = []

  def study(env):
    calls.append("off" if env else "on")
    return (90.0 if env else 81.0), (7 if not env else 0)

  def cells(processes):
    on, off = compile_cache.WAYS
    return {on: [10.0, 12.0, 11.0], off: [13.0, 13.0, 14.0]}

  monkeypatch.setattr(compile_cache, "_study_seconds", study)
  monkeypatch.setattr(compile_cache, "_cell_seconds", cells)
  result = compile_cache.measure(rounds=2)
  assert calls == ["on", "off", "off", "on"]  # alternating: drift falls on both alike
  md = compile_cache.markdown(result)
  assert "the cache held 7 programs at the end" in md
  assert "| without a compile cache | 90.0 |" in md
  assert "With the cache the study takes 0.90x its time without one." in md
  assert "| with the study's compile cache | 11.0 (10.0-12.0) |" in md
  assert "With the cache a fresh process takes 0.85x its time without one." in md


def test_the_compile_cache_cell_is_a_valid_train_command():
  import compile_cache

  from lrjax.config import experiment
  from lrjax.config.loading import load

  assert compile_cache.CELL[:4] == ["-m", "lrjax", "train", "--config"]
  spec, *flags = compile_cache.CELL[4:]
  overrides = [tuple(f.removeprefix("--config.").split("=", 1)) for f in flags]
  exp = experiment.parse(load(spec, overrides))
  assert (exp.num_epochs, exp.train_limit, exp.model) == (1, 12_800, "convnet")
