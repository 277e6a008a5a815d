"""Study figures (`lrjax.plot.study`) are written, sane PNGs, and survive an unfinished study."""

import os

import numpy as np
import pytest
from compare_fixtures import make_results

from lrjax.plot import study as figures


def _png(path):
  data = open(path, "rb").read()
  assert data[:8] == b"\x89PNG\r\n\x1a\n"
  return len(data), int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_write_figures(tmp_path):
  r = make_results(4, 2, 10)
  paths = figures.write_figures(r, tmp_path)
  names = sorted(os.path.basename(p) for p in paths)
  expected = ["lr_all.png", "lr_schedules.png", "accuracy_overlay.png"]
  expected += [f"curves_{n}.png" for n in r["arms"]]
  assert names == sorted(expected)
  for path in paths:
    assert os.path.dirname(path) == os.path.join(tmp_path, "figures")
    size, width, height = _png(path)
    assert size > 10_000
    if not path.endswith("lr_schedules.png"):
      assert width > height


def test_missing_runs_and_a_schedule_without_runs(tmp_path):
  r = make_results(3, 3, 8, missing=(("constant", 0), ("time_based", 1)))
  r["arms"].append("linear")
  paths = figures.write_figures(r, tmp_path)
  assert not any(p.endswith("curves_linear.png") for p in paths)
  assert any(p.endswith("curves_constant.png") for p in paths)
  with pytest.raises(ValueError, match="linear"):
    figures.plot_run_curves(r, "linear", tmp_path / "x.png")


def test_unequal_curve_lengths_and_one_seed(tmp_path):
  r = make_results(2, 2, 8)
  for key, values in r["runs"][1]["curves"].items():
    r["runs"][1]["curves"][key] = values[:5]  # a run cut short
  path = figures.plot_run_curves(r, "constant", tmp_path / "c.png")
  assert _png(path)[0] > 10_000
  one = make_results(2, 1, 8)
  assert _png(figures.plot_accuracy_overlay(one, tmp_path / "o.png", bars=False))[1] > 600


def test_lr_overlay_and_errors(tmp_path):
  r = make_results(3, 2, 8)
  size, width, height = _png(figures.plot_lr_curves(r, tmp_path / "a.png", panels=False))
  assert size > 10_000 and width > height
  with pytest.raises(ValueError, match="schedule"):
    figures.plot_run_curves(r, "nope", tmp_path / "x.png")
  for run in r["runs"]:
    run["curves"] = {}
  with pytest.raises(ValueError, match="lr"):
    figures.plot_lr_curves(r, tmp_path / "x.png")
  # no curves yet: only the final-accuracy bars remain to draw
  assert [os.path.basename(p) for p in figures.write_figures(r, tmp_path)] == [
    "accuracy_overlay.png"
  ]


def test_lr_curve_drawn_at_every_step_when_the_schedule_is_known(tmp_path):
  from lrjax.plot import study as fig_lib

  results = make_results(num_schedules=1, num_seeds=1, num_epochs=3)
  run = results["runs"][0]
  run.update(
    schedule_config={
      "name": "cosine_annealing",
      "peak_value": 0.1,
      "total_steps": 30,
      "num_cycles": 3,
    },
    steps_per_epoch=10,
    total_steps=30,
  )
  x, lr = fig_lib._lr_curve(results, run["arm"])
  assert len(x) == 30 and x[-1] == 2.9  # steps 0..29 in epochs
  assert lr[0] == pytest.approx(0.1) and lr[10] == pytest.approx(0.1) and lr[9] < 0.01
  assert os.path.getsize(fig_lib.plot_lr_curves(results, str(tmp_path / "lr.png"))) > 10_000


def test_the_study_draws_with_the_plot_package():
  from lrjax.compare import results

  assert results.figures.write_figures is figures.write_figures


def test_range_test_figure(tmp_path):
  from lrjax.plot import lr_finder as range_test

  lrs = np.geomspace(1e-4, 1.0, 60)
  losses = 2.0 - np.tanh(np.log10(lrs) + 2.5) + 0.02 * np.sin(np.arange(60))
  result = {
    "lrs": lrs.tolist(),
    "losses": losses.tolist(),
    "smoothed_losses": losses.tolist(),
    "suggested_lr": 3e-3,
  }
  assert _png(range_test.plot_range_test(result, tmp_path / "r" / "lr.png"))[0] > 10_000
  with pytest.raises(ValueError, match="smoothed_losses"):
    range_test.plot_range_test({"lrs": [1.0], "losses": [1.0]}, tmp_path / "x.png")
  with pytest.raises(ValueError, match="one length"):
    range_test.plot_range_test({**result, "losses": [1.0]}, tmp_path / "x.png")
