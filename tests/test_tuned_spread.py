"""A tuned study spread over shards, local worker processes or Ray workers: the same chosen points
and the same final parameters as one process (phase-2 cells wait for their arm's phase-1 cells
in the one loop)."""

import importlib.util
import json

import pytest
from studies import finish, start_lrjax

TUNE = '{"lr_scale": [0.5, 2.0]}'  # halving on tuning seeds 1000, 1001: two rungs to wait for
STUDY = ["compare", "--config", "study_smoke", f"--config.study.tune={TUNE}"]


def _outcome(workdir) -> tuple[dict, dict, dict]:
  """(chosen point per arm, what each rung kept, params_sha256 per final run) from the study's
  results."""
  results = json.load(open(workdir / "results.json"))
  chosen = {k: e["chosen"] for k, e in results["tuning"]["arms"].items()}
  rungs = {k: e["rungs"] for k, e in results["tuning"]["arms"].items()}
  assert not results["missing"]
  finals = {}
  for name in results["tuning"]["arms"]:
    for seed in (0, 1):
      summary = workdir / "runs" / name / f"seed_{seed}" / "summary.json"
      finals[name, seed] = json.load(open(summary))["params_sha256"]
  return chosen, rungs, finals


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("tuned_one")
  finish(start_lrjax(*STUDY, "--workdir", str(workdir)))
  return _outcome(workdir)


@pytest.mark.slow
def test_two_shards_choose_and_train_as_one_process(tmp_path, one_process):
  shards = [start_lrjax(*STUDY, "--workdir", str(tmp_path), "--shard", f"{i}/2") for i in range(2)]
  finish(*shards)
  finish(start_lrjax("report", "--workdir", str(tmp_path)))
  assert _outcome(tmp_path) == one_process


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the [ray] extra")
def test_ray_workers_choose_and_train_as_one_process(tmp_path, one_process):
  ray = ["--executor", "ray", "--ray.num_cpus=2"]  # the study's default runtime, as one process
  finish(start_lrjax(*STUDY, "--workdir", str(tmp_path), *ray))
  assert _outcome(tmp_path) == one_process


@pytest.mark.slow
def test_local_workers_choose_and_train_as_one_process(tmp_path, one_process):
  local = ["--executor", "local"]  # one worker per CPU at the study's default one thread
  finish(start_lrjax(*STUDY, "--workdir", str(tmp_path), *local))
  assert _outcome(tmp_path) == one_process
