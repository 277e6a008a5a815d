"""Schedule figures are readable PNGs; plotting never switches the backend or needs pyplot."""

import os
import subprocess
import sys

import numpy as np
import pytest

import lrjax
from lrjax import plot


def _png_size(path):
  data = open(path, "rb").read()
  assert data[:8] == b"\x89PNG\r\n\x1a\n"
  width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
  return len(data), width, height


def test_overlay_and_panels(tmp_path):
  named = {"linear": lrjax.linear_decay(0.1, 100), "step": lrjax.step_decay(0.1, 0.5, 25)}
  size, w, h = _png_size(plot.plot_schedules(named, 120, tmp_path / "a" / "overlay.png"))
  assert size > 10_000 and w > 600 and h > 300
  size, w, h = _png_size(
    plot.plot_schedules(
      list(named.values()), 120, tmp_path / "p.png", panels=True, steps_per_epoch=10, title="t"
    )
  )
  assert size > 10_000 and w > h


def test_values_match_the_schedule():
  s = lrjax.polynomial_decay(0.1, 10, 2.0)
  np.testing.assert_allclose(plot.schedule_values(s, 12), s(np.arange(12)))


@pytest.mark.parametrize(
  "kwargs, argument",
  [
    (dict(schedules={}, num_steps=10), "schedules"),
    (dict(schedules={"x": 0.1}, num_steps=10), "schedules"),
    (dict(schedules=lrjax.constant(0.1), num_steps=0), "num_steps"),
    (dict(schedules=lrjax.constant(0.1), num_steps=5, steps_per_epoch=0), "steps_per_epoch"),
  ],
)
def test_bad_input(tmp_path, kwargs, argument):
  with pytest.raises(ValueError, match=argument):
    plot.plot_schedules(path=tmp_path / "x.png", **kwargs)


_NO_BACKEND_SWITCH = """
import sys, matplotlib
matplotlib.use("template")  # a user's choice (a notebook's inline backend, say)
import os
import subprocess
import sys

import numpy as np
import lrjax
from lrjax.plot import lr_finder, study
sys.path.insert(0, sys.argv[2])
from compare_fixtures import make_results
out = sys.argv[1]
lrjax.plot_schedules(lrjax.linear_decay(0.1, 10), 10, out + "/s.png", panels=True)
study.write_figures(make_results(3, 2, 6), out)
lrs = np.geomspace(1e-4, 1.0, 20)
result = {"lrs": lrs, "losses": 1 / lrs, "smoothed_losses": 1 / lrs, "suggested_lr": 1e-3}
lr_finder.plot_range_test(result, out + "/r.png")
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_plotting_keeps_the_backend_and_never_imports_pyplot(tmp_path):
  tests = os.path.dirname(os.path.abspath(__file__))
  proc = subprocess.run(
    [sys.executable, "-c", _NO_BACKEND_SWITCH, str(tmp_path), tests],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.split() == ["template", "False"]
  assert (tmp_path / "figures" / "accuracy_overlay.png").stat().st_size > 10_000


def test_plotting_in_process_keeps_the_backend(tmp_path):
  import matplotlib

  before = matplotlib.get_backend()
  plot.plot_schedules(lrjax.constant(0.1), 5, tmp_path / "c.png")
  assert matplotlib.get_backend() == before


def test_import_lrjax_does_not_import_matplotlib():
  code = "import sys, lrjax; print(any(m.startswith('matplotlib') for m in sys.modules))"
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip() == "False"


def test_without_matplotlib_the_error_names_the_extra(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
  with pytest.raises(ModuleNotFoundError, match=r"lrjax\[plot\]"):
    plot.plot_schedules(lrjax.constant(0.1), 5, tmp_path / "c.png")
