"""A study's compile cache: a process loads the programs another compiled (a study's workers, its
resumed cells) instead of compiling them, with the bits of a process that compiles all."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from lrjax.runtime import compile_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
  import json, os, sys
  import jax.monitoring
  from lrjax import runtime
  from lrjax.configs import smoke
  from lrjax.train import train_and_evaluate
  hits = []
  jax.monitoring.register_event_listener(
    lambda name, **kw: hits.append(name) if name.endswith("/cache_hits") else None
  )
  config = smoke.get_config()
  config.model, config.dataset, config.augment = "tiny", "synthetic:16x16x3:128:64:4", False
  config.num_epochs, config.batch_size, config.eval_batch_size = 1, 32, 64
  config.runtime.convolutions = sys.argv[3]
  runtime.setup(config.runtime, compiled=os.path.join(sys.argv[1], "compiled"))
  out = {"hits": [], "hashes": [], "dir": os.environ.get("JAX_COMPILATION_CACHE_DIR")}
  for seed in (0, 1):
    config.seed = seed
    run = train_and_evaluate(config, os.path.join(sys.argv[1], sys.argv[2], str(seed)), quiet=True)
    out["hits"].append(len(hits))
    out["hashes"].append(run["params_sha256"])
  print(json.dumps(out))
"""


def _train_two_seeds(workdir, name, convolutions, **env):
  env = {**os.environ, "PYTHONPATH": ROOT, "JAX_COMPILATION_CACHE_DIR": "", **env}
  env.pop("XLA_FLAGS", None)
  env.pop("PJRT_NPROC", None)
  proc = subprocess.run(
    [sys.executable, "-c", textwrap.dedent(SCRIPT), str(workdir), name, convolutions],
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
    cwd=ROOT,
  )
  assert proc.returncode == 0, proc.stderr
  return json.loads(proc.stdout.strip().splitlines()[-1])


# "auto" is oneDNN's convolutions where the [train] extra brings them (CI asserts it), else XLA's.
@pytest.mark.parametrize("convolutions", ["auto", "xla"])
def test_seeds_share_compiled_programs_and_their_bits(tmp_path, convolutions):
  first = _train_two_seeds(tmp_path, "first", convolutions)
  assert first["dir"] == str(tmp_path / "compiled")
  # One process compiles each step once whatever the seed (lrjax.train.step keeps them): the
  # cache is for the next process, which loads the train, evaluation and initialisation steps.
  assert first["hits"] == [0, 0], first
  assert len([f for f in os.listdir(tmp_path / "compiled") if f.endswith("-cache")]) >= 3
  again = _train_two_seeds(tmp_path, "again", convolutions)
  assert again["hits"][0] >= 3 and again["hits"][1] == again["hits"][0], again
  alone = _train_two_seeds(
    tmp_path / "alone", "alone", convolutions, JAX_ENABLE_COMPILATION_CACHE="false"
  )
  assert alone["hits"] == [0, 0] and alone["dir"] == ""
  assert not (tmp_path / "alone" / "compiled").exists()
  assert first["hashes"] == again["hashes"] == alone["hashes"]


def test_a_user_s_own_cache_is_kept(tmp_path, monkeypatch):
  monkeypatch.setenv(compile_cache.DIR_ENV, str(tmp_path / "mine"))
  assert compile_cache.use(str(tmp_path / "study")) == str(tmp_path / "mine")
  assert not (tmp_path / "study").exists()
  monkeypatch.setenv(compile_cache.ENABLE_ENV, "false")
  assert compile_cache.use(str(tmp_path / "study")) is None


@pytest.mark.parametrize("folder", ["", None, 3])
def test_a_bad_folder_is_named(folder):
  with pytest.raises(ValueError, match="folder must be a non-empty path, got"):
    compile_cache.use(folder)
