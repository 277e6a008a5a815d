"""The study runner on tiny settings: fairness, skipping finished runs, resuming; the range test."""

import json
import os
import sys

import jax
import ml_collections
import numpy as np
import pytest

from lrjax import lr_finder
from lrjax.compare import cell as cell_lib
from lrjax.compare import runner
from lrjax.config import study as study_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from runs import build_run  # noqa: E402

from lrjax.configs import smoke  # noqa: E402


def study_config():
  config = smoke.get_config()
  config.dataset = "synthetic:16x16x3:128:64:4"
  config.batch_size = 32
  config.eval_batch_size = 64
  config.num_epochs = 2
  config.snapshot_ensemble = True  # as the user sets it: a study never overrides it
  config.study = ml_collections.ConfigDict()
  config.study.schedules = {
    "constant": {"name": "constant", "value": 0.1},
    "linear": {"name": "linear_decay", "init_value": 0.1, "total_steps": {"fraction": 1.0}},
    "cosine_annealing": {
      "name": "cosine_annealing",
      "peak_value": 0.1,
      "total_steps": {"fraction": 1.0},
      "num_cycles": 2,
    },
  }
  config.study.order = ["constant", "linear", "cosine_annealing"]
  config.study.seeds = [0, 1]
  config.study.population = "never"  # one run at a time: the tests below count the runs
  return config


def test_same_initialisation_and_data_order_across_schedules(tmp_path):
  config = study_config()
  study = study_lib.parse(config)
  states, runs = [], []
  for name in ("constant", "linear"):  # both give lr 0.1 at step 0
    run = build_run(study.run(name, 1))
    perm = np.asarray(jax.random.permutation(jax.random.PRNGKey(0), 128))
    state = run.init_state()
    states.append(jax.device_get(state.params))
    runs.append((run, state, perm))
  for a, b in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
    np.testing.assert_array_equal(a, b)
  # One step on each run's own first batch: identical lr, data and noise give identical weights.
  stepped = []
  for run, state, _ in runs:
    from lrjax.data.datasets import epoch_permutation

    perm = epoch_permutation(run.experiment.seed, 0, 128)
    new, _ = run.train_step(state, run.train_batch(perm, 0), run.schedule)
    stepped.append(jax.device_get(new.params))
  for a, b in zip(jax.tree.leaves(stepped[0]), jax.tree.leaves(stepped[1])):
    np.testing.assert_array_equal(a, b)
  # And the run configs differ in nothing but the schedule.
  c1 = study.run("constant", 1).to_dict()
  c2 = study.run("linear", 1).to_dict()
  c1.pop("schedule"), c2.pop("schedule")
  assert c1 == c2


def test_study_writes_results_skips_finished_and_resumes(tmp_path, monkeypatch):
  config = study_config()
  real = cell_lib.train_cell
  calls = []

  def interrupted(cfg, workdir, cell, quiet=False):
    calls.append(cell)
    if len(calls) == 3:
      raise KeyboardInterrupt  # the study is stopped during its third run
    return real(cfg, workdir, cell, quiet=quiet)

  monkeypatch.setattr(cell_lib, "train_cell", interrupted)
  with pytest.raises(KeyboardInterrupt):
    runner.compare(config, str(tmp_path), quiet=True)
  assert len(calls) == 3
  calls.clear()
  monkeypatch.setattr(
    cell_lib, "train_cell", lambda *a, **k: (calls.append(a[2]), real(*a, **k))[1]
  )
  results = runner.compare(config, str(tmp_path), quiet=True)
  assert len(calls) == 4  # the two finished runs were skipped
  assert len(results["runs"]) == 6
  assert {(r["arm"], r["seed"]) for r in results["runs"]} == {
    (n, s) for n in ("constant", "linear", "cosine_annealing") for s in (0, 1)
  }
  on_disk = json.load(open(tmp_path / "results.json"))
  assert on_disk["arms"] == ["constant", "linear", "cosine_annealing"]
  assert len(on_disk["runs"][0]["curves"]["test_accuracy"]) == 2
  cosine = [r for r in on_disk["runs"] if r["arm"] == "cosine_annealing"]
  assert all(r["snapshot_ensemble"]["num_snapshots"] == 2 for r in cosine)
  md = open(tmp_path / "results.md").read()
  assert "| Accuracy |" in md and "| Loss |" in md
  # Labels: the study config's, else the arm's name with spaces for underscores.
  assert "| Metric | constant | linear | cosine annealing |" in md
  assert len(open(tmp_path / "results.csv").read().strip().splitlines()) == 7
  figures = os.listdir(tmp_path / "figures")
  assert "lr_schedules.png" in figures and "accuracy_overlay.png" in figures
  calls.clear()
  runner.compare(config, str(tmp_path), quiet=True)  # everything finished: nothing retrains
  assert calls == []


def test_labels_come_from_the_study_config(tmp_path):
  config = study_config()
  config.study.labels = {"linear": "Linear decay"}
  config.study.seeds = [0]
  results = runner.compare(config, str(tmp_path), quiet=True)
  assert results["labels"] == {
    "constant": "constant",
    "linear": "Linear decay",
    "cosine_annealing": "cosine annealing",
  }
  assert (
    "| Metric | constant | Linear decay | cosine annealing |"
    in (tmp_path / "results.md").read_text()
  )
  config.study.labels = {"linear": 3}
  with pytest.raises(ValueError, match="config.study.labels must map arm names to text"):
    runner.compare(config, str(tmp_path), quiet=True)


def test_bad_study_config(tmp_path):
  config = study_config()
  config.study.seeds = []
  with pytest.raises(ValueError, match="seeds"):
    runner.compare(config, str(tmp_path), quiet=True)
  config = study_config()
  config.study.schedules = {
    "broken": {"name": "linear_decay", "init_value": -1.0, "total_steps": 5}
  }
  config.study.order = ["broken"]
  with pytest.raises(ValueError, match="init_value"):
    runner.compare(config, str(tmp_path), quiet=True)
  config.study.order = ["constant", "nope"]
  with pytest.raises(ValueError, match="order"):
    runner.compare(config, str(tmp_path), quiet=True)


def test_range_test(tmp_path):
  config = smoke.get_config()
  config.dataset = "synthetic:16x16x3:256:64:4"
  result = lr_finder.find_lr(
    config, str(tmp_path), min_lr=1e-4, max_lr=100.0, num_steps=40, quiet=True
  )
  lrs = np.asarray(result["lrs"])
  assert np.all(np.diff(lrs) > 0) and lrs[0] == pytest.approx(1e-4, rel=1e-5)
  assert 1e-4 <= result["suggested_lr"] <= result["min_loss_lr"]
  assert os.path.getsize(tmp_path / "lr_finder.png") > 10_000
  assert json.load(open(tmp_path / "lr_finder.json"))["suggested_lr"] == result["suggested_lr"]
  with pytest.raises(ValueError, match="min_lr"):
    lr_finder.find_lr(config, str(tmp_path), min_lr=1.0, max_lr=0.1)


def test_suggestion_on_a_known_curve():
  lrs = np.logspace(-4, 1, 100)
  # Loss falls fastest around lr 1e-2, is lowest at 1e-1, then blows up.
  losses = 2.0 - np.tanh((np.log10(lrs) + 2) * 2) + np.where(lrs > 0.1, (lrs - 0.1) * 20, 0)
  s = lr_finder.suggest(lrs, losses)
  assert 1e-3 < s["steepest_lr"] < 3e-2
  assert s["suggested_lr"] <= s["min_loss_lr"] / 10 + 1e-12
