"""Optimizers from optax.contrib: optax's own updates, the smoke run, schedule-free evaluation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib
from runs import build_run
from test_train import smoke_config

from lrjax import optimizers
from lrjax.train import build, train_and_evaluate

NEW = ("schedule_free_sgd", "schedule_free_adamw", "prodigy", "dadapt_adamw", "dog", "mechanize")
DIRECT = {
  "schedule_free_sgd": lambda lr: contrib.schedule_free_sgd(lr),
  "schedule_free_adamw": lambda lr: contrib.schedule_free_adamw(lr),
  "prodigy": lambda lr: contrib.prodigy(lr),
  "dadapt_adamw": lambda lr: contrib.dadapt_adamw(lr),
  "dog": lambda lr: contrib.dog(lr),
  "mechanize": lambda lr: contrib.mechanize(optax.sgd(lr, momentum=0.9)),
}


@pytest.mark.parametrize("name", NEW)
def test_first_updates_are_optax_contribs(name):
  """On a toy least-squares problem, lrjax's optimizer (lr injected each step, as the train
  step does) takes the same steps as optax.contrib's called directly."""
  target = jnp.asarray([1.0, -2.0, 0.5])
  loss = lambda p: jnp.sum((p["w"] - target) ** 2) + p["b"] ** 2
  ours, theirs = optimizers.make_optimizer(name), DIRECT[name](0.05)
  p1 = p2 = {"w": jnp.zeros(3), "b": jnp.asarray(1.0)}
  s1, s2 = ours.init(p1), theirs.init(p2)
  for _ in range(5):
    s1.hyperparams["learning_rate"] = jnp.asarray(0.05)
    u1, s1 = ours.update(jax.grad(loss)(p1), s1, p1)
    u2, s2 = theirs.update(jax.grad(loss)(p2), s2, p2)
    p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
    np.testing.assert_allclose(a, b, rtol=1e-6)
  assert float(loss(p1)) != float(loss({"w": jnp.zeros(3), "b": jnp.asarray(1.0)}))


@pytest.mark.parametrize("name", NEW)
def test_a_warmup_from_zero_stays_finite(name):
  """A first step at rate 0 (any warmup from 0) leaves the parameters where they are and every
  later step finite: optax's Prodigy and D-Adapt AdamW alone estimate 0 / 0 there; then, at
  positive rates, the steps are optax's called on the same moments."""
  loss = lambda p: jnp.sum((p["w"] - 1.0) ** 2) + p["b"] ** 2
  opt = optimizers.make_optimizer(name, weight_decay=5e-4)
  params = {"w": jnp.zeros((2, 3)), "b": jnp.asarray(1.0)}
  state = opt.init(params)
  for step, lr in enumerate((0.0, 0.01, 0.02, 0.03)):
    state.hyperparams["learning_rate"] = jnp.asarray(lr)
    updates, state = opt.update(jax.grad(loss)(params), state, params)
    if step == 0:
      assert all(float(jnp.abs(u).max()) == 0 for u in jax.tree.leaves(updates))
    params = optax.apply_updates(params, updates)
    assert all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(params)), (name, step)
  if name != "dog":  # DoG's first steps are 1e-6 of the parameters' scale, by its design
    assert float(loss(params)) < float(loss({"w": jnp.zeros((2, 3)), "b": jnp.asarray(1.0)}))


def test_the_zero_rate_guard_is_needed():
  """Without the guard, optax's Prodigy and D-Adapt AdamW turn a zero first rate into NaN (the
  reason for it: if optax adds such a guard, this test says the wrapper can go)."""
  for make in (contrib.prodigy, contrib.dadapt_adamw):
    opt = optax.inject_hyperparams(make)(learning_rate=0.0)
    params = {"w": jnp.ones(3)}
    state = opt.init(params)
    _, state = opt.update({"w": jnp.ones(3)}, state, params)
    assert not bool(jnp.isfinite(state.inner_state.estim_lr))


@pytest.mark.parametrize("name", NEW)
def test_each_trains_the_smoke_config(tmp_path, name):
  config = smoke_config(num_epochs=2, optimizer=name)
  lr = 0.05 if name.startswith("schedule_free") else 1.0  # a multiplier for the lr-free ones
  config.schedule = {"name": "constant", "value": lr}
  out = train_and_evaluate(config, str(tmp_path), quiet=True)
  assert np.isfinite(out["final_test_loss"]) and out["final_test_accuracy"] > 0.25


def test_unknown_optimizer_names_the_choices():
  with pytest.raises(ValueError, match="config.optimizer.*prodigy"):
    build_run(smoke_config(optimizer="lion"))


class _BNNet(nn.Module):
  num_classes: int = 4

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.BatchNorm(use_running_average=not train, momentum=0.7)(nn.Dense(3)(x.mean((1, 2))))
    return nn.Dense(self.num_classes)(x)


def test_batch_statistics_are_recomputed_exactly_whatever_the_momentum():
  from lrjax.train import step as step_lib

  model = _BNNet()
  x = jax.random.uniform(jax.random.PRNGKey(0), (16, 4, 4, 3)) * 255
  tx = optimizers.make_optimizer("sgd")
  state = step_lib.create_train_state(model, tx, (4, 4, 3), seed=0)
  stats = step_lib.batch_stats_of(state, x, model=model, mean=np.zeros(3), std=np.ones(3))
  h = nn.Dense(3).apply({"params": state.params["Dense_0"]}, x.mean((1, 2)))
  np.testing.assert_allclose(stats["BatchNorm_0"]["mean"], h.mean(0), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(stats["BatchNorm_0"]["var"], h.var(0), rtol=1e-3, atol=1e-4)


def test_schedule_free_evaluates_at_its_averaged_point_with_batch_stats_recomputed(
  tmp_path, monkeypatch
):
  config = smoke_config(num_epochs=2, optimizer="schedule_free_sgd")
  config.schedule = {"name": "constant", "value": 0.05}
  out = train_and_evaluate(config, str(tmp_path), quiet=True)
  run, state = out["run"], out["state"]
  x = optimizers.eval_params("schedule_free_sgd", state.opt_state, state.params)
  assert any(
    not np.allclose(a, b) for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(state.params))
  )
  at_x = run.eval_state(state)
  for a, b in zip(jax.tree.leaves(at_x.params), jax.tree.leaves(x)):
    np.testing.assert_array_equal(a, b)
  assert any(
    not np.allclose(a, b)
    for a, b in zip(jax.tree.leaves(at_x.batch_stats), jax.tree.leaves(state.batch_stats))
  )
  # Every evaluation goes through it: the record's test figures are those at x.
  seen = []
  real = build.Run.eval_state
  monkeypatch.setattr(build.Run, "eval_state", lambda self, s: seen.append(1) or real(self, s))
  assert run.evaluate(state)["test_loss"] == pytest.approx(out["final_test_loss"], rel=1e-5)
  run.predict(state)
  assert len(seen) == 2


def test_a_snapshot_epoch_prepares_the_schedule_free_eval_state_once(tmp_path, monkeypatch):
  # Cyclic schedule with snapshots: each epoch ends a cycle, so each epoch evaluates and
  # predicts; both from one recomputation of the BatchNorm statistics.
  config = smoke_config(num_epochs=2, optimizer="schedule_free_sgd", snapshot_ensemble=True)
  config.schedule = {"name": "sgdr", "peak_value": 0.05, "first_period": {"epochs": 1}}
  seen = []
  real = build.Run.eval_state
  monkeypatch.setattr(build.Run, "eval_state", lambda self, s: seen.append(1) or real(self, s))
  out = train_and_evaluate(config, str(tmp_path), quiet=True)
  assert out["snapshot_ensemble"]["num_snapshots"] == 2
  assert len(seen) == 2  # one per epoch


@pytest.mark.parametrize("name", (*NEW, "sgd", "adam"))
def test_weight_decay_is_the_same_coupled_l2_for_every_optimizer(name):
  """Arms that differ in their optimizer differ in nothing else: `weight_decay` is the same
  coupled L2 on the kernels (not on biases) before every optimizer's own update but adamw's."""
  direct = {**DIRECT, "sgd": lambda lr: optax.sgd(lr, momentum=0.9), "adam": optax.adam}
  mask = {"kernel": True, "bias": False}
  theirs = optax.chain(optax.add_decayed_weights(0.1, mask=mask), direct[name](0.05))
  ours = optimizers.make_optimizer(name, weight_decay=0.1)
  p1 = p2 = {"kernel": jnp.full((2, 2), 2.0), "bias": jnp.full((2,), 2.0)}
  s1, s2 = ours.init(p1), theirs.init(p2)
  grads = {"kernel": jnp.full((2, 2), 0.5), "bias": jnp.full((2,), 0.5)}
  for _ in range(3):
    s1.hyperparams["learning_rate"] = jnp.asarray(0.05)
    u1, s1 = ours.update(grads, s1, p1)
    u2, s2 = theirs.update(grads, s2, p2)
    p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
    np.testing.assert_allclose(a, b, rtol=1e-6)
  if name in optimizers.SCHEDULE_FREE:  # its averaged point is found inside the chain
    x = optimizers.eval_params(name, s1, p1)
    assert jax.tree.structure(x) == jax.tree.structure(p1)
