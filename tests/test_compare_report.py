"""The results report: Table 1.1's layout, the paired comparison, the CSV of runs."""

import csv
import io
import re

import pytest
from compare_fixtures import make_results, with_metric

from lrjax.compare import report
from lrjax.configs.chapter_schedules import LABELS

ACC_CELL = re.compile(r"^\d\.\d{3} ± \d\.\d{3}$")
LOSS_CELL = re.compile(r"^\d\.\d{4} ± \d\.\d{4}$")


def _cells(line):
  return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(md):
  lines = md.splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith("| Metric"))
  return [_cells(line) for line in lines[start : start + 4]]


def test_table_layout_like_the_chapter():
  r = make_results(5, 3, 6)
  header, rule, accuracy, loss = _table(report.results_markdown(r))
  assert header == [
    "Metric",
    "Constant",
    "Time based decay",
    "Drop based decay",
    "Linear decay",
    "Polynomial decay",
  ]
  assert all(set(c) <= set("-:") for c in rule)
  assert accuracy[0] == "Accuracy" and all(ACC_CELL.match(c) for c in accuracy[1:])
  assert loss[0] == "Loss" and all(LOSS_CELL.match(c) for c in loss[1:])


def test_cells_hand_computed_and_caption():
  r = with_metric(make_results(2, 3, 6), "final_test_accuracy", {"constant": [0.86, 0.871, 0.882]})
  r = with_metric(r, "final_test_loss", {"constant": [0.1009, 0.104, 0.1071]})
  md = report.results_markdown(r)
  _, _, accuracy, loss = _table(md)
  assert accuracy[1] == "0.871 ± 0.011" and loss[1] == "0.1040 ± 0.0031"
  assert "resnet20 on cifar10, 6 epochs, seeds 0, 1, 2" in md
  assert "mean ± sample std over 3 seeds; final epoch" in md


def test_paired_section_and_verdicts():
  md = report.results_markdown(make_results(3, 3, 6))
  assert "## Paired comparison with Constant" in md
  assert "Accuracy (higher is better):" in md and "Loss (lower is better):" in md
  assert "| Difference | Interval (family 95%) | p | p (Holm) | p (perm.) | Verdict | n |" in md
  assert "Holm-adjusted" in md and "sign-flip" in md
  # the fixture's accuracy rises by 0.01 per schedule with small seed noise
  number = r"(< 0\.001|[\d.]+)"
  assert re.search(
    rf"\| Drop based decay \| \+0\.0\d\d \| \[\+0\.\d+, \+0\.\d+\] \| {number} \| {number} \|", md
  )
  assert "| better | 3 |" in md


def test_missing_runs_and_empty_schedule():
  r = make_results(3, 3, 6, missing=(("time_based", 2),))
  r["arms"].append("linear")
  r["labels"]["linear"] = "Linear decay"
  md = report.results_markdown(r)
  _, _, accuracy, loss = _table(md)
  assert accuracy[2].endswith("(n=2)") and ACC_CELL.match(accuracy[2].removesuffix(" (n=2)"))
  assert accuracy[4] == loss[4] == "n/a (n=0)"
  assert "Missing runs (4): Time based decay seed 2, Linear decay seed 0" in md
  assert "- Linear decay: no runs" in md


def test_single_seed_and_no_config():
  r = make_results(2, 1, 4, config={})
  md = report.results_markdown(r)
  _, _, accuracy, _ = _table(md)
  assert "±" not in accuracy[1] and "(n=" not in accuracy[1]
  assert "seeds 0. Test accuracy and loss, a single seed, no spread; final epoch" in md
  assert "needs >= 2 seeds" in md
  del r["config"], r["seeds"], r["labels"]
  assert "| Metric | constant | time_based |" in report.results_markdown(r)


def test_snapshot_table_only_with_snapshots():
  assert "Snapshot ensembles" not in report.results_markdown(make_results(7, 2, 4))
  md = report.results_markdown(make_results(7, 2, 4, snapshots=True))
  row = next(line for line in md.splitlines() if line.startswith("| Cosine annealing | 2 |"))
  assert "+0.010" in row


def test_wall_time_lines():
  md = report.results_markdown(make_results(2, 3, 4))
  assert "- Constant: 10.1 ± 0.1 s per run (n=3, total 30 s)" in md


def test_csv_one_row_per_run():
  r = make_results(7, 3, 4, missing=(("linear", 1),), snapshots=True)
  rows = list(csv.DictReader(io.StringIO(report.results_csv(r))))
  assert len(rows) == len(r["runs"]) == 20
  assert tuple(rows[0]) == report.CSV_FIELDS
  assert (rows[0]["arm"], rows[0]["seed"], rows[0]["label"]) == ("constant", "0", "Constant")
  run = r["runs"][0]
  assert float(rows[0]["final_test_accuracy"]) == run["final_test_accuracy"]
  assert rows[0]["ensemble_accuracy"] == ""
  assert rows[-1]["num_snapshots"] == "2" and float(rows[-1]["ensemble_accuracy"]) > 0
  assert ("linear", "1") not in {(row["arm"], row["seed"]) for row in rows}


def test_write_reports(tmp_path):
  paths = report.write_reports(make_results(2, 2, 4), tmp_path / "study")
  assert open(paths["markdown"], encoding="utf-8").read().startswith("# ")
  assert len(list(csv.reader(open(paths["csv"], encoding="utf-8")))) == 5


def test_bad_baseline():
  with pytest.raises(ValueError, match="baseline"):
    report.results_markdown(make_results(1, 2, 3), baseline="linear")


def test_report_shows_raw_and_holm_p_and_reads_the_verdict_from_holm():
  up = [0.52, 0.53, 0.54]
  r = with_metric(
    make_results(4, 3, 4),
    "final_test_accuracy",
    {"constant": [0.5, 0.5, 0.5], "time_based": up, "drop_based": up, "linear": up},
  )
  md = report.results_markdown(r)
  # raw p 0.035 (significant alone), Holm 3 x 0.035 = 0.105: undecided with these seeds; its
  # interval at the family's level (t at 1 - 0.05/6, df 2) includes 0 as the verdict says; the
  # sign-flip p of 3 seeds all one way is 2/8; the spread of the differences (0.01) would need
  # 10 seeds to detect a 1-point difference (the noncentral t; the normal approximation said 8).
  row = "| +0.030 | [-0.014, +0.074] | 0.035 | 0.105 | 0.250 | undecided with 3 seeds | 3 | 10 |"
  assert row in md


def test_recommendation_is_chosen_on_validation_never_on_test():
  base = make_results(3, 4, 4)
  names = base["arms"]
  # The last arm is best on test data; the first on validation data, clearly on every seed.
  val = {names[0]: [0.90, 0.91, 0.90, 0.91], names[1]: [0.80, 0.81, 0.80, 0.80]}
  val[names[2]] = [0.85, 0.86, 0.851, 0.86]
  results = with_metric(base, "final_validation_accuracy", val)
  md = report.results_markdown(results)
  line = next(x for x in md.splitlines() if x.startswith("Chosen on final validation accuracy"))
  first, last = (LABELS[names[0]], LABELS[names[2]])
  assert f": {first} (test accuracy " in line  # chosen on validation, though worst on test
  # The confirmation reads test data, which chose nothing, and says the choice did not hold.
  assert re.search(rf"; better on test: {last} \(\+\d+\.\d pt \[\+.*\]\); worse: none", line)
  # Scrambling the test metrics changes no word of the recommendation.
  scrambled = with_metric(results, "final_test_accuracy", {n: [0.5] * 4 for n in names})
  again = next(
    x
    for x in report.results_markdown(scrambled).splitlines()
    if x.startswith("Chosen on final validation accuracy")
  )
  assert again.split(" (test accuracy")[0] == line.split(" (test accuracy")[0]


def test_without_validation_data_nothing_is_recommended():
  md = report.results_markdown(make_results(3, 2, 4))
  assert "no finished runs with validation data: nothing recommended" in md


def test_a_results_json_written_before_arms_had_their_name_reads_as_today_s(tmp_path):
  import json

  from lrjax.compare import results as results_lib

  new = make_results(3, 2, 4)
  old = {k: v for k, v in new.items() if k != "arms"} | {"schedules": new["arms"]}
  old["runs"] = [{("schedule" if k == "arm" else k): v for k, v in r.items()} for r in new["runs"]]
  (tmp_path / "results.json").write_text(json.dumps(old))
  read = results_lib.load(str(tmp_path))
  assert read["arms"] == new["arms"] and [r["arm"] for r in read["runs"]] == [
    r["arm"] for r in new["runs"]
  ]
  assert report.results_markdown(read) == report.results_markdown(new)


def _budget_results():
  """Two budgets' runs of three arms, with validation accuracies that choose a different arm at
  each budget."""
  short, long = make_results(3, 3, 4), make_results(3, 3, 4)
  for budget, r, best in ((2, short, "time_based"), (4, long, "drop_based")):
    table = {
      a: [0.80 + (0.02 if a == best else 0.0) + 0.001 * s for s in range(3)] for a in r["arms"]
    }
    runs = with_metric(r, "final_validation_accuracy", table)["runs"]
    for run in runs:
      run["budget"] = budget
    r["runs"] = runs
  return {**short, "runs": short["runs"] + long["runs"], "budgets": [2, 4]}


def test_each_budget_s_section_recommends_what_the_budget_list_does(tmp_path):
  results = _budget_results()
  report.write_reports(results, tmp_path)
  md = (tmp_path / "results.md").read_text()
  for budget, best in ((2, "Time based decay"), (4, "Drop based decay")):
    listed = next(x for x in md.splitlines() if x.startswith(f"- {budget} epochs: "))
    assert listed.startswith(f"- {budget} epochs: {best} (test accuracy")
    section = md.split(f"# At {budget} epochs", 1)[1].split("# At ", 1)[0]
    recommendation = section.split("## Recommendation", 1)[1].split("##", 1)[0]
    assert f"): {best} (test accuracy" in recommendation, recommendation
    assert "nothing recommended" not in recommendation


def test_results_json_holds_the_conclusion(tmp_path):
  from lrjax.compare.conclusion import conclusion

  out = conclusion(_budget_results())
  assert {k: v["arm"] for k, v in out["recommended"].items()} == {
    "2": "time_based",
    "4": "drop_based",
  }
  # Confirmed on test data: the fixture's test accuracy rises by a point per arm.
  verdicts = {v["arm"]: v for v in out["recommended"]["2"]["verdicts"]}
  assert out["recommended"]["2"]["confirmed_on"] == "final_test_accuracy"
  assert set(verdicts) == {"constant", "drop_based"}
  assert all(v["metric"] == "final_test_accuracy" and v["test"] == "t" for v in verdicts.values())
  assert verdicts["constant"]["mean_difference"] < 0 < verdicts["drop_based"]["mean_difference"]
  for v in verdicts.values():  # a verdict and its interval agree
    excludes_zero = v["ci_low_adjusted"] > 0 or v["ci_high_adjusted"] < 0
    assert excludes_zero == (v["verdict"] in ("better", "worse"))
  rows = out["comparisons"]["4"]["final_test_accuracy"]
  assert [r["baseline"] for r in rows] == ["constant", "constant"]
  assert set(rows[0]) >= {"p_permutation", "p_equivalence_adjusted", "margin", "test"}


def test_the_verdicts_read_the_test_the_study_declared():
  up = [0.52, 0.53, 0.54, 0.55, 0.56]
  r = with_metric(
    make_results(2, 5, 4), "final_test_accuracy", {"constant": [0.5] * 5, "time_based": up}
  )
  assert "| better | 5 |" in report.results_markdown(r)  # the t-test: p = 0.0016
  r["config"] = {**r.get("config", {}), "study": {"test": "permutation", "margin": 0.0}}
  md = report.results_markdown(r)
  assert "the verdict reads the exact sign-flip test" in md and "no equivalence margin" in md
  assert "| 0.062 | undecided with 5 seeds | 5 |" in md  # 2/32: no lower with 5 seeds


def test_the_arms_table_reads_each_arm_s_shape_warmup_and_reasons():
  from lrjax.compare import arms_table

  warm = {
    "name": "scale",
    "factor": 2.0,
    "schedule": {
      "name": "warmup",
      "schedule": {"name": "constant", "value": 1.0},
      "warmup_steps": 5,
      "init_value": 0.0,
    },
  }
  assert arms_table.shape(warm) == "warmup(constant)"  # a tuning factor is no part of it
  assert arms_table.warmup_steps(warm, 100) == 5
  triangle = {"name": "triangle", "peak_value": 0.1, "warmup_steps": 10, "total_steps": 40}
  assert arms_table.warmup_steps(triangle, 40) == 10
  decay = {"name": "linear_decay", "init_value": 0.1, "total_steps": 40}
  assert arms_table.warmup_steps(decay, 40) == 0
  per = {"name": "per_epoch", "schedule": decay, "steps_per_epoch": 4}
  assert arms_table.shape(per) == "per_epoch(linear_decay)"


def test_every_report_shows_how_its_arms_are_set_up(tmp_path):
  from lrjax.compare import runner
  from lrjax.configs import study_smoke

  config = study_smoke.get_config()
  config.study.seeds = (0,)
  config.study.arms = {"linear": {"weight_decay": 0.0, "why": {"weight_decay": "a test reason"}}}
  runner.compare(config, str(tmp_path), quiet=True)
  md = (tmp_path / "results.md").read_text()
  assert "## How the arms are set up" in md
  row = "| Linear decay | sgd | 0.9 | 0 | `linear_decay` | step | none | weight_decay: a test "
  row += "reason |"
  assert row in md
  assert "| Constant | sgd | 0.9 | 0.0005 | `constant` | step | none |  |" in md
