"""Tuned studies: each arm at its own best point of a grid, chosen on validation data only."""

import json
import math
import os

import ml_collections
import pytest
from compare_fixtures import headings_never_skip_a_level, interrupt_at_epochs
from runs import synthetic_arrays
from test_train import smoke_config

from lrjax.compare import folders, phases, runner, tuning
from lrjax.config import study as study_lib
from lrjax.config import tune as tune_lib
from lrjax.files.run_dir import RunDir, State

# --------------------------------------------------------------- the grid and the choice


@pytest.mark.parametrize(
  "spec, message",
  [
    ({"lr_scale": [0.5, -1.0]}, r"config.study.tune.lr_scale must be positive numbers"),
    ({"lr_scale": [1.0, 1.0]}, r"must not repeat a value"),
    ({"lr_scale": {"log_range": [1.0], "num": 3}}, r"config.study.tune.lr_scale must be a list"),
    ({"lr_scale": {"log_range": [0.5, 2.0], "num": 1}}, r"lr_scale.num must be an integer >= 2"),
    ({"lr_scale": [1.0], "metric": "test_accuracy"}, r"config.study.tune.metric must be one of"),
    ({"lr_scale": [1.0], "extend_edges": -1}, r"extend_edges must be an integer >= 0"),
    ({"lr_scale": [1.0], "seeds": [-1]}, r"config.study.tune.seeds must be a list of integers"),
    ({"lr_scale": [1.0], "grid": {"weight_decay": []}}, r"tune.grid.weight_decay must be a non-"),
    ({"lr_scale": [1.0], "scales": [1.0]}, r"config.study.tune has no field 'scales'"),
    ({"lr_scale": [1.0], "strategy": "hyperband"}, r"config.study.tune.strategy must be one of"),
    ({"lr_scale": [1.0], "seeds": [1]}, r"config.study.tune.seeds \[1\] are final seeds too"),
  ],
)
def test_a_bad_tune_field_is_one_line_naming_it(spec, message):
  with pytest.raises(ValueError, match=message):
    tune_lib.parse(spec, (0, 1))


def test_a_log_range_spans_its_ends_and_extensions_continue_its_steps():
  tune = tune_lib.parse({"lr_scale": {"log_range": [0.25, 4.0], "num": 5}}, (3, 4))
  assert tune.scales == (0.25, 0.5, 1.0, 2.0, 4.0) and tune.seeds == (1000, 1001)  # not 3, 4
  assert tune.strategy == "halving" and tune.rungs() == [(1000,), (1001,)]
  assert [p.id for p in tune.points()] == ["lr_0.25", "lr_0.5", "lr_1", "lr_2", "lr_4"]
  assert [p.lr_scale for p in tune.extension("low", 2)] == [0.0625]
  assert [p.lr_scale for p in tune.extension("high", 1)] == [8.0]
  crossed = tune_lib.parse({"lr_scale": [1, 2], "grid": {"weight_decay": [0, 1e-4]}}, (0,))
  assert [p.id for p in crossed.points()] == [
    "lr_1-weight_decay_0",
    "lr_1-weight_decay_0.0001",
    "lr_2-weight_decay_0",
    "lr_2-weight_decay_0.0001",
  ]


P = [tune_lib.Point(s) for s in (0.25, 0.5, 1.0, 2.0)]


@pytest.mark.parametrize(
  "values, higher, chosen",
  [
    ([[0.1], [0.5], [0.4], [0.2]], True, 0.5),  # the argmax
    ([[0.1], [0.5], [0.5], [0.2]], True, 0.5),  # ties: the smaller scale
    ([[0.5], [0.5], [0.5], [0.5]], True, 0.25),
    ([[0.9, 0.1], [0.4, 0.5], [0.9, None], [0.2, 0.2]], True, 0.25),  # means; diverged: worst
    ([[2.0], [1.0], [1.5], [None]], False, 0.5),  # a loss: the argmin, diverged the worst
  ],
)
def test_the_choice_is_the_best_mean_with_ties_to_the_smaller_scale(values, higher, chosen):
  table = list(zip(P, values))
  assert tuning.choose(table, higher).lr_scale == chosen


def test_edges_and_flatness():
  scales = [p.lr_scale for p in P]
  assert tuning.at_edge(P[0], scales) == "low" and tuning.at_edge(P[3], scales) == "high"
  assert tuning.at_edge(P[1], scales) is None and tuning.at_edge(P[0], [0.25]) is None
  table = list(zip(P, [[0.80], [0.895], [0.90], [None]]))
  assert tuning.sensitivity(table, True, 0.01) == 2  # 0.90 and 0.895; diverged never counts


# --------------------------------------------------------------- a tuned study, end to end

DATASET = "synthetic:16x16x3:288:64:4"  # 32 of the 288 held out: 256 to train, 8 steps an epoch


def tuned_config(**tune):
  config = smoke_config(dataset=DATASET, validation_fraction=32 / 288, num_epochs=2)
  config.study = ml_collections.ConfigDict()
  config.study.schedules = {
    "constant": {"name": "constant", "value": 0.05},
    "linear": {"name": "linear_decay", "init_value": 0.05, "total_steps": {"fraction": 1.0}},
  }
  config.study.order = ["constant", "linear"]
  config.study.seeds = [0, 1]
  config.study.population = "never"
  config.study.tune = {"lr_scale": [0.5, 2.0], "seeds": [7], **tune}
  return config


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("tuned")
  return workdir, runner.compare(tuned_config(), str(workdir), quiet=True)


def test_the_choice_is_the_argmax_of_the_recorded_validation_metric(tuned):
  workdir, results = tuned
  study = study_lib.parse(tuned_config())
  for name in ("constant", "linear"):
    entry = results["tuning"]["arms"][name]
    values = {g["lr_scale"]: g["values"]["7"] for g in entry["grid"]}
    best = max(sorted(values), key=lambda s: values[s])  # ties: the smaller scale
    assert entry["chosen_lr_scale"] == best
    summary = json.load(
      open(folders.tune_dir(str(workdir), name, f"lr_{best:g}", 7) + "/summary.json")
    )
    assert values[best] == summary["final_validation_accuracy"]
    assert phases.chosen(str(workdir), study, name).lr_scale == best
    # Two points only: whichever is chosen is at an edge, and the report says so.
    assert entry["edge"] in ("low", "high")


def test_phase_two_trains_the_chosen_point_on_every_final_seed(tuned):
  workdir, results = tuned
  assert not results["missing"]
  runs = {(r["arm"], r["seed"]): r for r in results["runs"]}
  assert set(runs) == {(n, s) for n in ("constant", "linear") for s in (0, 1)}
  for name in ("constant", "linear"):
    scale = results["tuning"]["arms"][name]["chosen_lr_scale"]
    base = 0.05
    for seed in (0, 1):
      assert runs[name, seed]["curves"]["lr"][0] == pytest.approx(base * scale)
    # The tuning seed (7) measures nothing: every final seed trains the chosen point itself.
    for seed in (0, 1):
      assert os.path.exists(folders.run_dir(str(workdir), name, seed) + "/summary.json")
    entry = results["tuning"]["arms"][name]
    tuned_mean = entry["grid"][[g["point"] for g in entry["grid"]].index(entry["chosen"])]
    finals = [runs[name, s]["final_validation_accuracy"] for s in (0, 1)]
    assert entry["optimism"] == pytest.approx(tuned_mean["values"]["7"] - sum(finals) / 2)
  compute = results["tuning"]["compute"]
  assert compute["phase_1_runs"] == 4 and compute["phase_2_runs"] == 4


def test_results_show_the_response_figure_and_the_chosen_values(tuned):
  workdir, results = tuned
  on_disk = json.load(open(workdir / "results.json"))
  assert on_disk["tuning"]["arms"]["linear"]["grid"][0]["values"].keys() == {"7"}
  md = (workdir / "results.md").read_text()
  assert "## Tuning" in md and "![Learning-rate response](figures/lr_response.png)" in md
  assert "the final seeds' test data chose nothing and confirms" in md and "Optimism" in md
  for name, label in (("constant", "constant"), ("linear", "linear")):
    scale = results["tuning"]["arms"][name]["chosen_lr_scale"]
    assert f"| {label} | {scale:g} |" in md
  assert "best at the edge: widen the grid" in md
  assert (workdir / "figures" / "lr_response.png").stat().st_size > 10_000


def test_an_edge_extends_the_grid_where_the_results_call_for_it(tmp_path):
  # Small learning rates (0.0025 and 0.005 here): more is better, so the best lies on the grid's
  # high edge after 16 steps.
  config = tuned_config(lr_scale=[0.05, 0.1], extend_edges=1, seeds=[0])
  config.study.seeds = [1]  # tuning on seed 0, whose 16 steps at these rates favour the higher
  config.study.order = ["constant"]
  del config.study.schedules["linear"]
  results = runner.compare(config, str(tmp_path), quiet=True)
  entry = results["tuning"]["arms"]["constant"]
  assert [g["lr_scale"] for g in entry["grid"]] == [0.05, 0.1, 0.2]  # one step past 0.1
  assert entry["chosen_lr_scale"] == 0.2
  low = folders.tune_dir(str(tmp_path), "constant", "lr_0.025", 0)
  assert RunDir(low).state() is State.SKIPPED  # not called for
  assert entry["edge"] == "high"  # still the edge after the extension: the report says so


def load_data():
  return synthetic_arrays(288, permute_test=False)


def load_data_with_permuted_test_labels():
  return synthetic_arrays(288, permute_test=True)


def test_selection_reads_no_test_data(tmp_path):
  chosen, accuracies, recommended = [], [], []
  for loader in ("load_data", "load_data_with_permuted_test_labels"):
    config = tuned_config(lr_scale=[0.25, 1.0, 4.0])
    config.dataset = f"test_tuning:{loader}"
    results = runner.compare(config, str(tmp_path / loader), quiet=True)
    chosen.append({n: e["chosen"] for n, e in results["tuning"]["arms"].items()})
    accuracies.append(sorted(r["final_test_accuracy"] for r in results["runs"]))
    recommended.append(results["conclusion"]["recommended"]["all"]["arm"])
  assert chosen[0] == chosen[1]  # the same point for every arm
  assert recommended[0] == recommended[1]  # and the same recommended arm
  assert accuracies[0] != accuracies[1]  # while the test metrics, the confirmation's, changed


def test_a_tuned_study_killed_in_phase_one_resumes_to_the_same_results(
  tmp_path, tuned, monkeypatch
):
  _, whole = tuned
  seen = interrupt_at_epochs(monkeypatch, lambda k, epoch, s: len(s) == 4)  # the third run
  with pytest.raises(KeyboardInterrupt):
    runner.compare(tuned_config(), str(tmp_path), quiet=True)
  assert "tune" in seen[-1][2]
  monkeypatch.undo()
  again = runner.compare(tuned_config(), str(tmp_path), quiet=True)
  assert {n: e["chosen"] for n, e in again["tuning"]["arms"].items()} == {
    n: e["chosen"] for n, e in whole["tuning"]["arms"].items()
  }
  for a, b in zip(again["runs"], whole["runs"]):
    assert a["curves"] == b["curves"]


@pytest.mark.parametrize(
  "change, message",
  [
    ({"validation_fraction": 0.0}, r"config.study.tune chooses on validation data"),
  ],
)
def test_a_tuned_study_needs_validation_data(tmp_path, change, message):
  config = tuned_config()
  for k, v in change.items():
    config[k] = v
  with pytest.raises(ValueError, match=message):
    runner.compare(config, str(tmp_path), quiet=True)


def test_a_forked_arm_with_budgets_is_refused(tmp_path):
  config = tuned_config()
  config.study.arms = {"wsd": {"wsd_fork": {"peak_value": 0.05, "cooldown": 0.25}}}
  config.study.order = ["constant", "linear", "wsd"]
  config.study.budgets = [1, 2]
  with pytest.raises(ValueError, match=r"a forked arm \(wsd_fork\) shares one trunk"):
    runner.compare(config, str(tmp_path), quiet=True)


def test_budgets_tune_per_budget_and_recommend_on_validation(tmp_path):
  config = tuned_config()
  config.study.budgets = [1, 2]
  results = runner.compare(config, str(tmp_path), quiet=True)
  keys = set(results["tuning"]["arms"])
  assert keys == {f"{n}@{b}" for n in ("constant", "linear") for b in (1, 2)}
  for b in (1, 2):
    for n in ("constant", "linear"):
      entry = results["tuning"]["arms"][f"{n}@{b}"]
      assert entry["budget"] == b and "chosen" in entry
  md = (tmp_path / "results.md").read_text()
  assert "Chosen on final validation accuracy (validation data chooses); confirmed on" in md
  assert md.count("## Tuning") == 2  # one per budget
  assert headings_never_skip_a_level(md)
  assert all(math.isfinite(r["final_validation_accuracy"]) for r in results["runs"])


def test_a_tuning_run_evaluates_validation_alone_at_its_end(tuned):
  workdir, results = tuned
  chosen = results["tuning"]["arms"]["linear"]["chosen"]
  run = RunDir(folders.tune_dir(str(workdir), "linear", chosen, 7))
  first, last = run.records()
  assert "validation_accuracy" not in first and "test_accuracy" not in first  # mid-run: none
  assert "validation_accuracy" in last and "test_accuracy" not in last  # no phase reads test
  assert run.summary()["final_test_accuracy"] is None
  final = RunDir(folders.run_dir(str(workdir), "linear", 0))  # a final run: everything
  assert all("test_accuracy" in r and "validation_accuracy" in r for r in final.records())
