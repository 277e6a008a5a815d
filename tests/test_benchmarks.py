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
