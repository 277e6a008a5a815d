"""A study of the user's own training function (`config.study.train_fn`): the same cells, resume,
shards, tuning and report as the engine's studies; a failing run fails alone, in one line."""

import importlib.util
import json
import os
import re
import signal
import time

import function_study_config
import numpy as np
import pytest
from studies import finish, start_lrjax

from lrjax.compare.results import report_workdir
from lrjax.compare.runner import compare
from lrjax.executors.base import CellsFailed
from lrjax.runtime.preemption import Preempted

FN = "function_fns:train"
HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "function_study_config.py")
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the [ray] extra")
needs_submitit = pytest.mark.skipif(
  importlib.util.find_spec("submitit") is None, reason="the [slurm] extra"
)


def function_config(**study):
  config = function_study_config.get_config()
  with config.unlocked():
    config.study.update(study)
  return config


def finals(results):
  return {
    (r["arm"], r["seed"], r["budget"]): (r["final_test_accuracy"], r["final_test_loss"])
    for r in results["runs"]
  }


def test_a_function_study_records_every_run_and_reports_it(tmp_path):
  results = compare(function_config(), str(tmp_path), quiet=True)
  assert len(results["runs"]) == 4 and not results["missing"] and not results["failed"]
  run = os.path.join(tmp_path, "runs", "cosine", "seed_1")
  summary = json.load(open(os.path.join(run, "summary.json")))
  saved = np.load(os.path.join(run, "state.npz"))  # the function's own record
  curves = json.loads(str(saved["curves"]))
  assert summary["final_test_accuracy"] == curves[-1]["test_accuracy"]
  assert summary["final_validation_accuracy"] == curves[-1]["validation_accuracy"]
  assert summary["steps"] == 12 and summary["runtime"]["threads"] >= 1
  cosine = next(r for r in results["runs"] if r["arm"] == "cosine")
  assert cosine["curves"]["epoch"] == [1, 2, 3]
  assert cosine["curves"]["lr"][-1] < cosine["curves"]["lr"][0]  # the schedule at each epoch end
  report = open(os.path.join(tmp_path, "results.md")).read()
  assert "Paired comparison" in report and f"the training function {FN}, 3 epochs" in report
  # Arms are paired: same seed, same start; the schedules differ, so do the results.
  assert finals(results)["cosine", 0, None] != finals(results)["constant", 0, None]


def test_finished_runs_are_not_called_again_and_shards_equal_one_process(tmp_path):
  one = compare(function_config(), str(tmp_path / "one"), quiet=True)
  summary = tmp_path / "one" / "runs" / "constant" / "seed_0" / "summary.json"
  stamp = os.stat(summary).st_mtime_ns
  again = compare(function_config(), str(tmp_path / "one"), quiet=True)
  assert os.stat(summary).st_mtime_ns == stamp and finals(again) == finals(one)
  for i in range(2):
    assert compare(function_config(), str(tmp_path / "two"), shard=(i, 2), quiet=True) is None
  assert finals(report_workdir(str(tmp_path / "two"))) == finals(one)


@pytest.mark.parametrize(
  "fail, reason",
  [
    ("raise", "raised ZeroDivisionError: the user's code divided by zero"),
    ("nan", "returned test_loss=nan, not a finite number"),
    ("missing", "returned no 'test_accuracy'"),
    ("type", "returned list, not a mapping of metrics"),
  ],
)
def test_a_failing_run_fails_alone_in_one_line(tmp_path, fail, reason):
  arms = {"broken": {"schedule": {"name": "constant", "value": 1.0}, "user": {"fail": fail}}}
  config = function_config(arms=arms)
  with pytest.raises(CellsFailed, match="2 cells failed"):
    compare(config, str(tmp_path), quiet=True)
  results = json.load(open(tmp_path / "results.json"))
  assert {r["arm"] for r in results["runs"]} == {"constant", "cosine"}
  line = f"broken seed 0: {FN} {reason}"
  assert results["failed"][0].startswith(line) and len(results["failed"]) == 2
  assert "\n" not in results["failed"][0] and line in open(tmp_path / "results.md").read()


def test_budgets_train_each_arm_at_each_length_and_recommend_on_validation(tmp_path):
  from lrjax.compare import budgets

  config = function_config(budgets=(1, 3))
  config.user.scramble_test = True  # test metrics that could only mislead a choice
  results = compare(config, str(tmp_path), quiet=True)
  assert sorted({(r["budget"], r["epochs_trained"]) for r in results["runs"]}) == [(1, 1), (3, 3)]
  steps = json.load(open(tmp_path / "runs" / "cosine" / "budget_1" / "seed_0" / "config.json"))
  assert steps["total_steps"] == 4  # the cosine decays over its own budget: 1 epoch of 4 steps
  for budget in (1, 3):
    chosen = budgets.recommendation(results, budget)["best"]
    by_validation = {
      n: sum(
        r["final_validation_accuracy"]
        for r in results["runs"]
        if r["arm"] == n and r["budget"] == budget
      )
      for n in ("constant", "cosine")
    }
    assert by_validation[chosen] == max(by_validation.values())


def test_preemption_reaches_the_function_and_the_resume_ends_as_uninterrupted(tmp_path):
  whole = compare(function_config(seeds=(0,)), str(tmp_path / "whole"), quiet=True)
  config = function_config(seeds=(0,))
  config.user.signal_at = 6  # SIGTERM in the second epoch of the first run
  with pytest.raises(Preempted, match="at step 8"):  # it stops at that epoch's end
    compare(config, str(tmp_path / "cut"), quiet=True)
  first = tmp_path / "cut" / "runs" / "constant" / "seed_0"
  assert not (first / "summary.json").exists() and (first / "state.npz").exists()
  config.user.signal_at = -1
  assert finals(compare(config, str(tmp_path / "cut"), quiet=True)) == finals(whole)


def test_tuning_a_function_reads_its_validation_metrics_only(tmp_path):
  tune = {"lr_scale": (0.01, 0.1, 1.0), "seeds": (7,), "strategy": "grid"}
  config = function_config(seeds=(0, 1), tune=tune)
  plain = compare(config, str(tmp_path / "plain"), quiet=True)["tuning"]["arms"]
  config.user.scramble_test = True
  scrambled = compare(config, str(tmp_path / "scrambled"), quiet=True)
  assert {n: a["chosen"] for n, a in scrambled["tuning"]["arms"].items()} == {
    n: a["chosen"] for n, a in plain.items()
  }
  for arm in plain.values():
    best = max(arm["grid"], key=lambda p: (p["values"]["7"], -p["lr_scale"]))
    assert arm["chosen"] == best["point"]
  assert {p["lr_scale"] for p in plain["cosine"]["grid"]} == {0.01, 0.1, 1.0}
  assert scrambled["tuning"]["compute"]["phase_2_runs"] == 4  # two arms x two final seeds


RAY = ["--executor", "ray", "--ray.cpus_per_cell=1", "--ray.num_cpus=2"]


@pytest.mark.slow
@needs_submitit
def test_slurm_array_through_submitit_s_local_executor_equals_one_process(tmp_path):
  one = compare(function_config(), str(tmp_path / "one"), quiet=True)
  args = ["compare", "--config", CONFIG, "--workdir", str(tmp_path / "slurm")]
  slurm = ["--executor", "slurm", "--slurm.cluster=local", "--slurm.array_parallelism=2"]
  out = finish(start_lrjax(*args, *slurm, env_extra={"PYTHONPATH": HERE}))[0]
  assert "FAILED" not in out, out
  assert finals(json.load(open(tmp_path / "slurm" / "results.json"))) == finals(one)


@pytest.mark.slow
@needs_ray
def test_ray_with_a_worker_killed_mid_run_equals_one_process(tmp_path):
  one = compare(function_config(), str(tmp_path / "one"), quiet=True)
  args = ["compare", "--config", CONFIG, "--config.user.sleep=0.05", "--workdir", str(tmp_path)]
  driver = start_lrjax(*args, *RAY, env_extra={"PYTHONPATH": HERE})
  killed, seen, deadline = None, {}, time.time() + 300

  def versions():  # each summary.json as (inode, mtime): a file written again gets another one
    for path in tmp_path.glob("runs/*/seed_*/summary.json"):
      try:
        st = os.stat(path)
      except FileNotFoundError:
        continue
      seen.setdefault(str(path), set()).add((st.st_ino, st.st_mtime_ns))

  while driver.poll() is None and time.time() < deadline:
    versions()
    for path in [] if killed else tmp_path.glob("runs/*/seed_*/claim.json"):
      try:
        pid = json.loads(path.read_text())["pid"]
        if not (path.parent / "summary.json").exists() and (path.parent / "state.npz").exists():
          os.kill(pid, signal.SIGKILL)
          killed = pid
          break
      except (OSError, ValueError, KeyError):  # being written or released, or gone
        continue
    time.sleep(0.02)
  out = finish(driver)[0]
  versions()
  assert killed is not None and "FAILED" not in out, out
  assert len(seen) == 4 and all(len(v) == 1 for v in seen.values())  # each run finished once
  assert len(re.findall(r"^\[\d/4\] \w+ seed \d: test accuracy", out, re.M)) == 4, out
  assert finals(json.load(open(tmp_path / "results.json"))) == finals(one)


def test_from_python_a_function_study_equals_its_config(tmp_path):
  from function_fns import train

  from lrjax.compare.api import function_study

  config = function_config()
  results = function_study(
    train,
    str(tmp_path / "api"),
    schedules=config.study.schedules.to_dict(),
    seeds=(0, 1),
    num_epochs=3,
    steps_per_epoch=4,
    user=config.user.to_dict(),
    quiet=True,
  )
  assert finals(results) == finals(compare(config, str(tmp_path / "config"), quiet=True))
  assert (tmp_path / "api" / "results.md").exists()
  with pytest.raises(ValueError, match="top level of a module"):
    function_study(lambda job: {}, str(tmp_path / "x"), schedules=config.study.schedules)
  with pytest.raises(ValueError, match="schedules or arms"):
    function_study(train, str(tmp_path / "x"))


@pytest.mark.parametrize(
  "study, match",
  [
    ({"train_fn": "no_colon"}, "config.study.train_fn must be 'package.module:function'"),
    ({"steps_per_epoch": 0}, "config.study.steps_per_epoch must be an integer >= 1"),
    ({"train_fn": "function_fns:nothing"}, "has no attribute 'nothing'"),
    ({"train_fn": "no_such_module_x:f"}, "cannot import module 'no_such_module_x'"),
  ],
)
def test_a_bad_function_study_is_refused_before_anything_runs(tmp_path, study, match):
  with pytest.raises(ValueError, match=match):
    compare(function_config(**study), str(tmp_path), quiet=True)
  assert not (tmp_path / "runs").exists()


def test_a_finished_run_of_another_config_is_refused_not_reported(tmp_path):
  compare(function_config(), str(tmp_path), quiet=True)
  changed = function_config()
  changed.study.schedules.cosine.init_value = 0.5
  with pytest.raises(ValueError, match=r"runs/cosine/seed_0 .* another config.schedule.init_value"):
    compare(changed, str(tmp_path), quiet=True)
  more = function_config(seeds=(0, 1, 2))  # more seeds: the finished runs are still the same
  more.progress = False  # how runs are carried out may change
  assert len(compare(more, str(tmp_path), quiet=True)["runs"]) == 6


def test_a_new_grid_that_moves_a_choice_refuses_the_old_phase_2_runs(tmp_path):
  config = function_config(tune={"lr_scale": (0.01, 0.1, 1.0), "seeds": (7,)})
  before = compare(config, str(tmp_path), quiet=True)["tuning"]["arms"]
  # Only a grid whose new point wins moves the choice: the lowest scale alone.
  config.study.tune = {"lr_scale": (0.001,), "seeds": (7,)}
  if all(a["chosen"] == "lr_0.001" for a in before.values()):
    pytest.skip("the old choice was already the new one")
  with pytest.raises(ValueError, match=r"seed_\d .* another config.schedule"):
    compare(config, str(tmp_path), quiet=True)


def test_halving_keeps_the_better_half_at_each_rung_and_chooses_the_planted_best(tmp_path):
  tune = {"lr_scale": {"log_range": [0.25, 4.0], "num": 5}, "seeds": (1000, 1001, 1002)}
  config = function_config(train_fn="function_fns:planted", seeds=(0, 1), tune=tune)
  config.study.schedules = {"constant": {"name": "constant", "value": 1.0}}
  results = compare(config, str(tmp_path), quiet=True)
  entry = results["tuning"]["arms"]["constant"]
  rungs = entry["rungs"]
  assert [r["seeds"] for r in rungs] == [[1000], [1001], [1002]]
  assert [len(r["trained"]) for r in rungs] == [5, 3, 2]  # 5, then the better 3, then 2
  assert set(rungs[0]["kept"]) == {"lr_0.5", "lr_1", "lr_2"}  # the three nearest the best
  assert rungs[1]["kept"][0] == "lr_1" and len(rungs[1]["kept"]) == 2
  assert rungs[2]["kept"] == ["lr_1"] and entry["chosen"] == "lr_1"
  # 5 + 3 + 2 tuning runs, every run trained to its end; the dropped points are marked skipped.
  assert results["tuning"]["compute"]["phase_1_runs"] == 10
  skipped = os.path.join(tmp_path, "runs", "constant", "tune", "lr_0.25", "seed_1001")
  assert os.path.exists(os.path.join(skipped, "skipped.json"))
  assert results["tuning"]["strategy"] == "halving"
  assert "successive halving" in (tmp_path / "results.md").read_text()
  # No final run is a tuning run, and the final seeds trained the chosen point alone.
  assert {(r["arm"], r["seed"]) for r in results["runs"]} == {("constant", 0), ("constant", 1)}
  assert not os.path.exists(os.path.join(tmp_path, "runs", "constant", "tune", "lr_1", "seed_0"))


def test_a_tuning_seed_may_not_be_a_final_seed():
  from lrjax.config.checks import ConfigError
  from lrjax.config.study import parse

  config = function_config(tune={"lr_scale": [1.0], "seeds": (1, 7)})
  with pytest.raises(ConfigError, match=r"config.study.tune.seeds \[1\] are final seeds too"):
    parse(config)
