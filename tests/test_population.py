"""A seed's runs trained as one vmapped population: same results as one at a time, resumable,
and chosen by a measured probe only where it is faster."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compare_fixtures import interrupt_at_epochs
from runs import build_run
from test_compare_runner import study_config

import lrjax
from lrjax.compare import runner
from lrjax.config import study as study_lib
from lrjax.train import strategy


def _study(mode: str):
  config = study_config()
  config.study.seeds = [3]
  config.study.population = mode
  return config


def _by_schedule(results):
  return {r["arm"]: r for r in results["runs"]}


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
  return _by_schedule(
    runner.compare(_study("never"), str(tmp_path_factory.mktemp("seq")), quiet=True)
  )


def test_population_matches_runs_one_at_a_time(tmp_path, sequential):
  pop = _by_schedule(runner.compare(_study("always"), str(tmp_path), quiet=True))
  assert set(pop) == set(sequential) == {"constant", "linear", "cosine_annealing"}
  for name, run in pop.items():
    for key in ("train_loss", "test_loss", "lr", "test_accuracy"):
      np.testing.assert_allclose(run["curves"][key], sequential[name]["curves"][key], rtol=1e-5)
    summary = json.load(open(tmp_path / "runs" / name / "seed_3" / "summary.json"))
    assert summary["population"] == 3
  # The cyclic schedule's snapshots are taken per member, as in a run of its own.
  ours, theirs = (r["cosine_annealing"]["snapshot_ensemble"] for r in (pop, sequential))
  assert ours["num_snapshots"] == theirs["num_snapshots"] == 2
  assert ours.keys() == theirs.keys()
  for key, value in ours.items():  # a vmapped program rounds differently: same within 1e-5
    np.testing.assert_allclose(value, theirs[key], rtol=1e-5, err_msg=key)


def _interrupt_epochs(monkeypatch, stop):
  seen = interrupt_at_epochs(monkeypatch, stop)

  class Epochs(list):  # (members, epoch) of each population epoch
    def __eq__(self, other):
      return [(k, e) for k, e, _ in seen] == other

  return Epochs()


def _assert_same_test_loss(pop, sequential):
  for name, run in pop.items():
    np.testing.assert_allclose(
      run["curves"]["test_loss"], sequential[name]["curves"]["test_loss"], rtol=1e-5
    )


def test_interrupted_population_resumes_to_the_same_results(tmp_path, monkeypatch, sequential):
  epochs = _interrupt_epochs(monkeypatch, lambda k, epoch, seen: epoch == 1 and len(seen) == 2)
  with pytest.raises(KeyboardInterrupt):
    runner.compare(_study("always"), str(tmp_path), quiet=True)
  assert not (tmp_path / "runs" / "linear" / "seed_3" / "summary.json").exists()
  pop = _by_schedule(runner.compare(_study("always"), str(tmp_path), quiet=True))
  # The second try started from the checkpoint after epoch 0.
  assert epochs == [(3, 0), (3, 1), (3, 1)]
  _assert_same_test_loss(pop, sequential)


@pytest.mark.parametrize("ratio,expected", [(0.5, True), (2.0, False)])
def test_auto_uses_the_population_only_where_the_probe_says_it_is_faster(
  tmp_path, monkeypatch, ratio, expected
):
  probes = []

  def fake_probe(runs, steps=3):
    probes.append(len(runs))
    return {"population_ms": 10.0 * ratio, "sequential_ms": 10.0, "ratio": ratio}

  monkeypatch.setattr(strategy, "probe", fake_probe)
  monkeypatch.setattr(strategy, "platform", lambda: "gpu")  # where the probe decides
  config = _study("auto")
  config.study.seeds = [3, 4]
  runner.compare(config, str(tmp_path), quiet=True)
  assert probes == [3]  # measured once per study
  record = json.load(open(tmp_path / "execution.json"))
  assert record["population"] is expected and record["probe"]["ratio"] == ratio
  summary = json.load(open(tmp_path / "runs" / "linear" / "seed_4" / "summary.json"))
  assert ("population" in summary) is expected
  if expected:  # both seeds ran the one compiled population step
    study = study_lib.parse(config)
    run = build_run(study.run("linear", 4))
    assert run.steps.train_members._cache_size() == 1


def test_auto_on_cpu_trains_one_at_a_time_without_probing(tmp_path, monkeypatch):
  def no_probe(runs, steps=3):
    raise AssertionError("probed on CPU")

  monkeypatch.setattr(strategy, "probe", no_probe)
  monkeypatch.setattr(strategy, "platform", lambda: "cpu")
  config = _study("auto")
  config.study.order = ["constant", "linear"]
  del config.study.schedules["cosine_annealing"]  # an arm left out of the order is refused
  runner.compare(config, str(tmp_path), quiet=True)
  assert json.load(open(tmp_path / "execution.json")) == {
    "population": False,
    "platform": "cpu",
    "probe": None,
  }
  summary = json.load(open(tmp_path / "runs" / "linear" / "seed_3" / "summary.json"))
  assert "population" not in summary


def test_probe_times_both_ways_on_this_machine(tmp_path):
  config = _study("auto")
  study = study_lib.parse(config)
  names = ("constant", "linear")
  runs = [build_run(study.run(n, 3)) for n in names]
  figures = strategy.probe(runs, steps=2)
  assert figures["population_ms"] > 0 and figures["sequential_ms"] > 0
  assert figures["ratio"] == pytest.approx(figures["population_ms"] / figures["sequential_ms"])


def test_bad_population_mode(tmp_path):
  with pytest.raises(ValueError, match="config.study.population"):
    runner.compare(_study("sometimes"), str(tmp_path), quiet=True)


def test_choose_mixes_kinds_in_one_vmapped_program():
  kinds = (lrjax.constant(0.1), lrjax.linear_decay(0.1, 10), lrjax.step_decay(0.1, 0.5, 3))
  steps = jnp.arange(12)
  values = jax.vmap(lambda i: lrjax.choose(kinds, i)(steps))(jnp.arange(3))
  for i, s in enumerate(kinds):
    np.testing.assert_array_equal(values[i], s(steps))


@pytest.mark.parametrize("index", [3, -1, 1.5])
def test_choose_rejects_an_index_out_of_range(index):
  with pytest.raises(ValueError, match="index"):
    lrjax.choose([lrjax.constant(0.1), lrjax.constant(0.2), lrjax.constant(0.3)], index)


def test_choose_of_a_huge_step_follows_the_chosen_schedule():
  s = lrjax.choose([lrjax.constant(0.1), lrjax.time_based_decay(0.1, 1.0)], 1)
  assert float(s(2**40)) == pytest.approx(0.1 / (1 + 2**40), rel=1e-6)


def test_a_changed_population_starts_afresh(tmp_path, monkeypatch, sequential):
  epochs = _interrupt_epochs(monkeypatch, lambda k, epoch, seen: epoch == 1 and k == 3)
  with pytest.raises(KeyboardInterrupt):
    runner.compare(_study("always"), str(tmp_path), quiet=True)
  config = _study("always")
  config.study.order = ["constant", "linear"]  # the study changed: two members, not three
  del config.study.schedules["cosine_annealing"]
  pop = _by_schedule(runner.compare(config, str(tmp_path), quiet=True))
  assert epochs == [(3, 0), (3, 1), (2, 0), (2, 1)]
  _assert_same_test_loss(pop, sequential)


@pytest.mark.parametrize("mode", ["never", "always"])
def test_a_diverging_schedule_is_reported_and_the_study_goes_on(tmp_path, mode):
  config = _study(mode)
  config.study.schedules["explode"] = {"name": "constant", "value": 1e30}  # in its first epoch
  config.study.schedules["late"] = {"name": "constant", "value": 1e10}  # in its second
  config.study.order = ["constant", "explode", "late"]
  for name in ("linear", "cosine_annealing"):
    del config.study.schedules[name]
  results = runner.compare(config, str(tmp_path), quiet=True)
  runs = _by_schedule(results)
  assert 0 <= runs["explode"]["diverged"]["step"] < 4 <= runs["late"]["diverged"]["step"] < 8
  assert runs["explode"]["diverged"]["lr"] == pytest.approx(1e30)
  assert runs["explode"]["final_test_accuracy"] is None
  assert len(runs["explode"]["curves"]["test_loss"]) == 0
  assert len(runs["late"]["curves"]["test_loss"]) == 1  # the epoch before it diverged
  assert runs["constant"]["diverged"] is None and runs["constant"]["final_test_accuracy"] > 0
  md = (tmp_path / "results.md").read_text()
  assert "Diverged runs (2;" in md and "explode seed 3 at step" in md
  assert "n/a (n=0)" in md
  assert (tmp_path / "figures" / "accuracy_overlay.png").stat().st_size > 10_000
  # Finished, diverged included: a second call trains nothing.
  summary = tmp_path / "runs" / "explode" / "seed_3" / "summary.json"
  before = summary.stat().st_mtime_ns
  runner.compare(config, str(tmp_path), quiet=True)
  assert summary.stat().st_mtime_ns == before
