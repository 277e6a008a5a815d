"""Schedule figures are written, readable PNGs."""

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
