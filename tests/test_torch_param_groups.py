"""Per-group learning rates against PyTorch's SGD with two parameter groups under `LambdaLR`
(recorded by scripts/peers/torch_param_groups.py): `lrjax.per_group` with a schedule per group,
and the trainer's `config.param_groups` head at 10x."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from runs import build_run
from test_train import smoke_config

import lrjax
from lrjax.groups import group_learning_rates, per_group, scaled_schedule

RECORD = json.loads(
  (Path(__file__).parent / "data" / "peers" / "torch_param_groups.json").read_text()
)
CASES = {c["id"]: c for c in RECORD["cases"]}
HEAD = {"head": {"match": "^Dense_", "lr_scale": 10.0}}


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_per_group_rates_equal_torch_s_lambda_lr(case_id):
  """`per_group` with a schedule per group gives torch's SGD + LambdaLR per-group rates."""
  case = CASES[case_id]
  base = lrjax.cosine_decay(case["settings"]["lr"], case["settings"]["steps"])
  if case_id == "cosine-head-10x":
    head = scaled_schedule(base, 10.0)
  else:  # a linear warmup over 5 steps to 10x the base rate, held
    head = lrjax.warmup(lrjax.constant(10.0 * case["settings"]["lr"]), warmup_steps=5)
  groups = {"backbone": dict(schedule=base), "head": dict(schedule=head)}
  tx = per_group(optax.sgd, groups, {"backbone": "backbone", "head": "head"})
  params = {"backbone": jnp.zeros(2), "head": jnp.zeros(2)}
  update = jax.jit(tx.update)
  state, seen = tx.init(params), {"backbone": [], "head": []}
  for _ in range(case["settings"]["steps"]):
    _, state = update(jax.tree.map(jnp.ones_like, params), state, params)
    for group, rate in group_learning_rates(state).items():
      seen[group].append(float(rate))
  for group, values in case["values"].items():
    np.testing.assert_allclose(seen[group], values, rtol=1e-5, atol=1e-7, err_msg=group)


def test_the_engine_s_head_at_10x_equals_torch_s():
  """The trainer's `{"head": {"lr_scale": 10}}` on the cosine: torch's 10x lambda."""
  case = CASES["cosine-head-10x"]
  schedule = {"name": "cosine_decay", "init_value": 0.1, "decay_steps": 20}
  run = build_run(smoke_config(schedule=schedule, num_epochs=2, param_groups=HEAD))
  state, seen = run.init_state(), {"rest": [], "head": []}
  spe = run.steps_per_epoch
  for t in range(run.total_steps):
    batch = run.train_batch(run.epoch_order(t // spe), t % spe)
    state, _ = run.train_step(state, batch, run.step_schedules)
    for group, rate in group_learning_rates(state.opt_state).items():
      seen[group].append(float(rate))
  for group, torch_group in (("rest", "backbone"), ("head", "head")):
    expected = case["values"][torch_group][: run.total_steps]
    np.testing.assert_allclose(seen[group], expected, rtol=1e-5, atol=1e-7, err_msg=group)
