"""WSD against the values Hugging Face and timm produce (recorded by scripts/peers/wsd.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

import lrjax
from tests.schedule_values import values

RECORD = json.loads((Path(__file__).parent / "data" / "peers" / "wsd.json").read_text())
CASES = {c["id"]: c for c in RECORD["cases"]}


def _lrjax_schedule(case):
  s = case["settings"]
  if case["peer"] == "transformers.get_wsd_schedule":
    floor = s["min_lr_ratio"] * s["peak"]
    return lrjax.warmup_stable_decay(
      s["peak"],
      warmup_steps=s["num_warmup_steps"],
      decay_steps=s["num_decay_steps"],
      total_steps=s["num_training_steps"],
      decay_shape=s["decay_type"],
      warmup_shape=s["warmup_type"],
      init_value=floor,
      end_value=floor,
    )
  # timm: `t_initial` is the stable and decay phases after a warmup prefix from 0.
  stable = s.get("stable_fn", "constant")
  return lrjax.warmup_stable_decay(
    s["peak"],
    warmup_steps=s["warmup_t"],
    decay_steps=s["decay_t"],
    total_steps=s["warmup_t"] + s["t_initial"],
    decay_shape=s["decay_fn"],
    end_value=s.get("lr_min", 0.0),
    stable_shape="constant" if stable == "constant" else "power",
    stable_power=0.5 if stable == "rsqrt" else s.get("stable_power", 0.5),
    stable_timescale=s.get("stable_timescale"),
  )


def test_every_shape_and_size_is_recorded():
  assert len([c for c in CASES if c.startswith("hf-")]) == 3 * 3 * 3 * 2
  assert len([c for c in CASES if c.startswith("timm-W")]) == 3 * 3
  assert len([c for c in CASES if c.startswith(("timm-rsqrt", "timm-power"))]) == 2 * 3 * 2


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_same_values_at_every_step(case_id):
  case = CASES[case_id]
  expected = np.asarray(case["values"])
  got = values(_lrjax_schedule(case), np.arange(len(expected)))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-8)


def test_hf_default_call_with_the_stable_phase_inferred():
  # As users call it: get_wsd_schedule(num_warmup_steps, num_decay_steps, num_training_steps).
  case = CASES["hf-W10-D25-T100-linear-1-sqrt-m0.0"]
  s = lrjax.warmup_stable_decay(
    0.1, warmup_steps=10, decay_steps=25, total_steps=100, decay_shape="1-sqrt"
  )
  assert int(s.stable_steps) == 65
  np.testing.assert_allclose(values(s, np.arange(103)), case["values"], rtol=1e-5, atol=1e-8)
