"""A study folder written by an earlier lrjax (`tests/data/old_study_smoke`: the smoke study at
two threads, one run stopped after its first epoch's checkpoint, by the code before the typed
config and the run folder's one owner) still reports, and resumes to the same bits."""

import json
import os
import shutil

import pytest
from onednn_common import needs_onednn
from studies import NAMES, SEEDS, finish, start_lrjax

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "old_study_smoke")


@pytest.mark.slow
@needs_onednn  # the folder's runtime: a resumed study keeps the one it started with
def test_an_old_study_reports_and_resumes_to_the_same_bits(tmp_path):
  workdir = tmp_path / "study"
  shutil.copytree(FIXTURE, workdir)
  expected = json.load(open(workdir / "expected.json"))["params_sha256"]
  out = finish(start_lrjax("report", "--workdir", str(workdir)))[0]
  assert "1 runs not finished: cosine seed 1" in out
  assert len(json.load(open(workdir / "results.json"))["runs"]) == 5
  out = finish(start_lrjax("compare", "--config", "study_smoke", "--workdir", str(workdir)))[0]
  assert "runtime: convolutions oneDNN 3.2.0, 2 threads" in out  # the one it started with
  assert out.count("finished earlier, skipped") == 5
  for name in NAMES:
    for seed in SEEDS:
      run = f"runs/{name}/seed_{seed}"
      assert json.load(open(workdir / run / "summary.json"))["params_sha256"] == expected[run]
  records = [json.loads(x) for x in open(workdir / "runs/cosine/seed_1/metrics.jsonl")]
  assert [r["epoch"] for r in records] == [0, 1]
