"""Every config file loads the way `lrjax` loads it, from any directory, variants included."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")

_LOAD = """
import json, sys
from lrjax import cli
out = {}
for spec in sys.argv[1:]:
  config = cli._load_config_flags(["lrjax train", "--config", spec], {}).config
  out[spec] = {"model": config.model, "seeds": list(config.get("study", {}).get("seeds", []))}
print(json.dumps(out))
"""


def _load(tmp_path, *specs) -> dict:
  # The repository root is not on the path there: the loader must add it for `from configs ...`.
  proc = subprocess.run(
    [sys.executable, "-c", _LOAD, *specs],
    cwd=tmp_path,
    env={**os.environ, "PYTHONPATH": ""},
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_config_loads_from_another_directory(tmp_path):
  files = sorted(f for f in os.listdir(CONFIGS) if f.endswith(".py") and f != "__init__.py")
  loaded = _load(tmp_path, *(os.path.join(CONFIGS, f) for f in files))
  assert len(loaded) == len(files)
  assert loaded[os.path.join(CONFIGS, "study_fashion_mnist.py")]["seeds"] == [0, 1]


def test_a_variant_alone_loads_from_another_directory(tmp_path):
  medium = os.path.join(CONFIGS, "study_fashion_mnist.py") + ":medium"
  assert _load(tmp_path, medium)[medium]["seeds"] == [0, 1, 2, 3, 4]
  linear = os.path.join(CONFIGS, "chapter.py") + ":linear"
  assert _load(tmp_path, linear)[linear]["model"] == "resnet50"
