"""Studies beyond the chapter: arms that change the optimizer, budgets, forked WSD cooldowns."""

import json
import os
import re

import jax
import ml_collections
import numpy as np
import pytest
from compare_fixtures import headings_never_skip_a_level, interrupt_at_epochs
from runs import build_run
from test_train import smoke_config

from lrjax.compare import budgets, folders, runner
from lrjax.config import study as study_lib
from lrjax.train import train_and_evaluate

FORK = {"peak_value": 0.1, "warmup_epochs": 0, "cooldown": 0.25, "decay_shape": "1-sqrt"}


def budget_study():
  config = smoke_config(num_epochs=4)
  # 32 of 288 training images held out for validation: 256 left, 8 steps an epoch.
  config.dataset, config.validation_fraction = "synthetic:16x16x3:288:64:4", 32 / 288
  config.study = ml_collections.ConfigDict()
  config.study.arms = {
    "constant": {"schedule": {"name": "constant", "value": 0.1}},
    "linear": {
      "schedule": {"name": "linear_decay", "init_value": 0.1, "total_steps": {"fraction": 1.0}}
    },
    "wsd": {"wsd_fork": FORK},
  }
  config.study.order = ["constant", "linear", "wsd"]
  config.study.seeds = [0, 1]
  config.study.budgets = [2, 4]
  config.study.population = "never"
  return config


@pytest.fixture(scope="module")
def budget_results(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("budgets")
  return workdir, runner.compare(budget_study(), str(workdir), quiet=True)


def test_arms_that_change_the_optimizer_keep_initialisation_and_data_order():
  config = smoke_config(num_epochs=1)
  config.study = ml_collections.ConfigDict()
  config.study.arms = {
    "sgd": {"schedule": {"name": "constant", "value": 0.05}},
    "prodigy": {"optimizer": "prodigy", "schedule": {"name": "constant", "value": 1.0}},
  }
  config.study.seeds = [3]
  study = study_lib.parse(config)
  runs = [build_run(study.run(n, 3)) for n in study.names]
  a, b = (jax.device_get(r.init_state().params) for r in runs)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
  for epoch in range(3):
    np.testing.assert_array_equal(runs[0].epoch_order(epoch), runs[1].epoch_order(epoch))
  assert {r.experiment.optimizer for r in runs} == {"sgd", "prodigy"}
  assert not study.schedule_only()  # so no population: the optimizers differ


@pytest.mark.parametrize(
  "arms, message",
  [
    ({"x": {"no_such_field": 1}}, r"config.study.arms.x: the config has no field 'no_such_field'"),
    ({"x": 3}, r"config.study.arms.x must be a dict"),
    ({"x": {"wsd_fork": {"peak_value": 0.1, "cooldown": 1.5}}}, r"wsd_fork.cooldown"),
    ({"x": {"wsd_fork": {"cooldown": 0.2}}}, r"wsd_fork must have peak_value"),
  ],
)
def test_bad_arms_name_the_field(tmp_path, arms, message):
  config = smoke_config()
  config.study = ml_collections.ConfigDict()
  config.study.arms = arms
  config.study.seeds = [0]
  with pytest.raises(ValueError, match=message):
    runner.compare(config, str(tmp_path), quiet=True)


def test_every_arm_at_every_budget_with_its_table_and_figure(budget_results):
  workdir, results = budget_results
  assert results["budgets"] == [2, 4] and not results["missing"]
  runs = {(r["arm"], r["seed"], r["budget"]) for r in results["runs"]}
  assert runs == {(n, s, b) for n in ("constant", "linear", "wsd") for s in (0, 1) for b in (2, 4)}
  linear = [r for r in results["runs"] if r["arm"] == "linear" and r["seed"] == 0]
  # {"fraction": 1.0} scales with the budget: the decay ends with each run.
  assert sorted(r["schedule_config"]["total_steps"] for r in linear) == [16, 32]
  md = (workdir / "results.md").read_text()
  assert md.startswith("# Accuracy against budget")
  assert "| Arm | 2 ep | 4 ep |" in md and "# At 2 epochs" in md and "# At 4 epochs" in md
  assert "Chosen on final validation accuracy (validation data chooses); confirmed on" in md
  line = next(x for x in md.splitlines() if x.startswith("- 2 epochs: "))
  pattern = r"- 2 epochs: (\S+) \(test accuracy 0\.\d{3}\); worse: .*; equivalent: .*; "
  pattern += r"undecided: .*"
  best = re.fullmatch(pattern, line).group(1)
  # The budget's own section recommends the same arm.
  section = md.split("# At 2 epochs", 1)[1].split("# At 4 epochs", 1)[0]
  assert f"): {best} (test accuracy" in section and "nothing recommended" not in section
  assert "# At 2 epochs" in md and "p (Holm)" in md
  assert headings_never_skip_a_level(md)
  # Each budget's table says how long its runs trained.
  assert ", 2 epochs, seeds 0, 1." in md and ", 4 epochs, seeds 0, 1." in md
  assert (workdir / "figures" / "accuracy_vs_budget.png").stat().st_size > 10_000
  rows = (workdir / "results.csv").read_text().splitlines()
  assert rows[0].startswith("budget,arm,") and len(rows) == 1 + 12


def test_compute_counts_the_trunk_once(budget_results):
  _, results = budget_results
  assert results["trunks"] == {"wsd": {"0": 3, "1": 3}}  # ceil(4 x 0.75) epochs
  assert budgets.compute_epochs(results, "linear") == 6  # 2 + 4
  # The trunk (3 epochs), then cooldowns of 0.5 and 1 epoch.
  assert budgets.compute_epochs(results, "wsd") == pytest.approx(3 + 0.5 + 1)


def test_a_fork_equals_an_independent_run_and_starts_where_its_cooldown_does(
  budget_results, tmp_path
):
  workdir, _ = budget_results
  config = budget_study()
  study = study_lib.parse(config)
  for budget, start in ((2, 12), (4, 24)):  # 12: within epoch 1; 24: an epoch's end
    cfg = study.run("wsd", 0, budget)
    alone = train_and_evaluate(cfg, str(tmp_path / str(budget)), quiet=True)
    fork = json.load(open(folders.run_dir(str(workdir), "wsd", 0, budget) + "/summary.json"))
    assert fork["params_sha256"] == alone["params_sha256"]
    schedule = alone["run"].schedule.fields()
    assert int(schedule["warmup_steps"]) + int(schedule["stable_steps"]) == start


def test_an_interrupted_fork_resumes_to_the_same_result(tmp_path, monkeypatch, budget_results):
  _, results = budget_results
  config = budget_study()
  config.study.seeds = [0]

  def in_a_fork(k, epoch, seen):
    workdir = seen[-1][2]
    return "budget_4" in workdir and "wsd" in workdir  # killed during its cooldown

  interrupt_at_epochs(monkeypatch, in_a_fork)
  with pytest.raises(KeyboardInterrupt):
    runner.compare(config, str(tmp_path), quiet=True)
  fork = folders.run_dir(str(tmp_path), "wsd", 0, 4)
  assert sorted(os.listdir(os.path.join(fork, "checkpoints"))) == ["24"]  # the trunk's start
  monkeypatch.undo()
  again = runner.compare(config, str(tmp_path), quiet=True)
  ours = {(r["arm"], r["budget"]): r for r in again["runs"]}
  theirs = {(r["arm"], r["budget"]): r for r in results["runs"] if r["seed"] == 0}
  for key, run in ours.items():
    np.testing.assert_allclose(run["curves"]["test_loss"], theirs[key]["curves"]["test_loss"])
