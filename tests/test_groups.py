"""Per-group schedules and weight decay, layer-wise decay, and timm's factors
(recorded by scripts/peers/layer_decay.py)."""

import functools
import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax.groups import (
  decay_labels,
  group_learning_rates,
  is_decayed,
  layer_decay_groups,
  layer_depths,
  layer_scales,
  leaf_labels,
  per_group,
  resnet_depths,
  scaled_groups,
)
from lrjax.models import registry

RECORD = json.loads((Path(__file__).parent / "data" / "peers" / "layer_decay.json").read_text())
CASES = {c["id"]: c for c in RECORD["cases"]}
KEY = jax.random.key(0, impl="rbg")  # compiles faster than threefry on CPU (as test_models)

BASE = lrjax.warmup(lrjax.cosine_decay(0.1, 20), warmup_steps=3)


def tiny_params():
  """A head, a conv kernel, a BatchNorm scale and biases."""
  k = jax.random.split(jax.random.key(1), 3)
  return {
    "conv": {"kernel": jax.random.normal(k[0], (3, 3, 2, 4))},
    "bn": {"scale": jnp.full((4,), 1.5), "bias": jnp.full((4,), 0.25)},
    "head": {"kernel": jax.random.normal(k[1], (4, 3)), "bias": jax.random.normal(k[2], (3,))},
  }


def part(path, leaf):
  if path[0] == "head":
    return "head"
  return "backbone" if is_decayed(path, leaf) else "no_decay"


GROUPS = {
  "head": dict(schedule=10.0 * BASE, weight_decay=1e-3),
  "backbone": dict(schedule=BASE, weight_decay=5e-4),
  "no_decay": dict(schedule=lrjax.linear_decay(0.05, 10), weight_decay=0.0),
}


def sgd_update(t, label, g, p):
  """By hand: -lr (g + wd p) for decayed leaves, -lr g for the others (SGD, no momentum)."""
  lr, wd = GROUPS[label]["schedule"](t), GROUPS[label]["weight_decay"]
  return -lr * (g + wd * p) if wd else -lr * g


def test_each_group_follows_its_schedule_and_decay_under_jit():
  params = tiny_params()
  tx = per_group(optax.sgd, GROUPS, leaf_labels(part))
  state = tx.init(params)
  labels = lrjax.groups.label_leaves(params, part)
  update, rates = jax.jit(tx.update), jax.jit(group_learning_rates)
  # Before the first update: the rate the first one will use.
  np.testing.assert_allclose(rates(state)["head"], GROUPS["head"]["schedule"](0), rtol=1e-6)
  for t in range(6):
    grads = jax.tree.map(lambda p, t=t: jnp.cos(p + t), params)
    updates, state = update(grads, state, params)
    got = rates(state)
    assert set(got) == set(GROUPS)
    for g, spec in GROUPS.items():
      np.testing.assert_allclose(got[g], spec["schedule"](t), rtol=1e-6, err_msg=f"{g} at {t}")
    want = jax.tree.map(functools.partial(sgd_update, t), labels, grads, params)
    jax.tree.map(lambda u, w: np.testing.assert_allclose(u, w, rtol=1e-5, atol=1e-8), updates, want)
    params = optax.apply_updates(params, updates)


def test_no_decay_labels_leave_batchnorm_scales_and_biases_undecayed():
  params = tiny_params()
  labels = decay_labels(params)
  assert labels == {
    "conv": {"kernel": "decay"},
    "bn": {"scale": "no_decay", "bias": "no_decay"},
    "head": {"kernel": "decay", "bias": "no_decay"},
  }
  lr, wd = 0.1, 0.01
  tx = per_group(
    optax.sgd, {"decay": dict(schedule=lr, weight_decay=wd), "no_decay": dict(schedule=lr)}, labels
  )
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["bn"]["scale"], -lr * np.ones(4), rtol=1e-6)
  np.testing.assert_allclose(updates["head"]["bias"], -lr * np.ones(3), rtol=1e-6)
  kernel = params["conv"]["kernel"]
  np.testing.assert_allclose(updates["conv"]["kernel"], -lr * (1 + wd * kernel), rtol=1e-5)


def test_decay_labels_mask_as_make_optimizer_does_on_a_resnet():
  params = resnet_params("tiny")
  assert jax.tree.map(lambda label: label == "decay", decay_labels(params)) == jax.tree.map(
    lambda p: p.ndim > 1, params
  )


def test_adamw_gets_each_group_s_decay_as_its_own():
  # Decoupled: the group's value replaces adamw's default (1e-4), also 0 for the no-decay group.
  params = tiny_params()
  labels = decay_labels(params)
  tx = per_group(
    optax.adamw,
    {"decay": dict(schedule=1e-2, weight_decay=0.1), "no_decay": dict(schedule=1e-2)},
    labels,
  )
  grads = jax.tree.map(lambda p: jnp.sin(p) + 0.5, params)
  got, _ = tx.update(grads, tx.init(params), params)
  for wd, label in ((0.1, "decay"), (0.0, "no_decay")):
    ref = optax.adamw(1e-2, weight_decay=wd)
    want, _ = ref.update(grads, ref.init(params), params)
    for g, u, w in zip(jax.tree.leaves(labels), jax.tree.leaves(got), jax.tree.leaves(want)):
      if g == label:
        np.testing.assert_allclose(u, w, rtol=1e-6)


def test_rates_are_found_through_a_chain_and_any_schedule_kind_works():
  params = tiny_params()
  groups = {
    "a": dict(schedule=optax.cosine_decay_schedule(0.2, 10)),
    "b": dict(schedule=0.03),
    "c": dict(schedule=lambda count: 0.01 * (count + 1)),
  }
  labels = {"conv": {"kernel": "a"}, "bn": "b", "head": "c"}
  tx = optax.chain(optax.clip_by_global_norm(1.0), per_group(optax.sgd, groups, labels))
  state = tx.init(params)
  for t in range(3):
    _, state = jax.jit(tx.update)(params, state, params)
    got = group_learning_rates(state)
    np.testing.assert_allclose(got["a"], groups["a"]["schedule"](t), rtol=1e-6)
    np.testing.assert_allclose(got["b"], 0.03, rtol=1e-6)
    np.testing.assert_allclose(got["c"], 0.01 * (t + 1), rtol=1e-6)


def test_scaled_groups_put_a_head_at_ten_times_the_base():
  groups = scaled_groups(BASE, {"head": 10.0, "backbone": 1.0}, {"head": 0.0, "backbone": 1e-4})
  assert groups["backbone"]["schedule"] is BASE
  steps = np.arange(12)
  np.testing.assert_allclose(
    jax.vmap(groups["head"]["schedule"])(steps), 10 * jax.vmap(BASE)(steps), rtol=1e-6
  )
  assert [g["weight_decay"] for g in groups.values()] == [0.0, 1e-4]


@functools.cache
def resnet_params(name):
  model = registry.create_model(name, 7)
  if name == "tiny":  # real parameters for the smallest
    return jax.jit(lambda k: registry.init_variables(model, k, (8, 8, 3)))(KEY)["params"]
  return jax.eval_shape(lambda: registry.init_variables(model, KEY, (32, 32, 3)))["params"]


@pytest.mark.parametrize("d", [0.5, 0.75, 1.0])
def test_layer_decay_on_the_tiny_resnet(d):
  params = resnet_params("tiny")
  depths = resnet_depths(params)
  assert sorted(set(jax.tree.leaves(depths))) == [0, 1, 2, 3]  # stem, 2 blocks, head
  assert jax.tree.leaves((depths["conv_init"], depths["bn_init"])) == [0, 0, 0]
  groups, labels = layer_decay_groups(params, BASE, d, depths, weight_decay=1e-4)
  assert jax.tree.structure(labels) == jax.tree.structure(params)
  for path, label in jax.tree_util.tree_leaves_with_path(labels):
    depth = int(label.split("_")[1])
    factor = float(groups[label]["schedule"](5) / BASE(5))
    np.testing.assert_allclose(factor, d ** (3 - depth), rtol=1e-6, err_msg=str(path))
  assert labels["Dense_0"]["kernel"] == "layer_3_decay"
  assert labels["conv_init"]["kernel"] == "layer_0_decay"
  assert labels["bn_init"]["scale"] == "layer_0_no_decay"
  assert groups["layer_3_decay"]["schedule"] is BASE  # the head at factor 1
  assert [groups[f"layer_0_{k}"]["weight_decay"] for k in ("decay", "no_decay")] == [1e-4, 0.0]
  tx = per_group(optax.sgd, groups, labels)
  state = tx.init(params)
  _, state = jax.jit(tx.update)(params, state, params)
  rates = group_learning_rates(state)
  np.testing.assert_allclose(rates["layer_0_decay"], d**3 * BASE(0), rtol=1e-6)
  np.testing.assert_allclose(rates["layer_3_no_decay"], BASE(0), rtol=1e-6)


@pytest.mark.parametrize(
  "name, blocks",
  [("resnet20", 9), ("resnet18", 8), ("resnet50", 16), ("preact_resnet_tutorial", 27)],
)
def test_resnet_depths_of_the_built_in_resnets(name, blocks):
  depths = resnet_depths(resnet_params(name))
  assert sorted(set(jax.tree.leaves(depths))) == list(range(blocks + 2))
  assert set(jax.tree.leaves(depths["Dense_0"])) == {blocks + 1}
  assert set(jax.tree.leaves(depths.get("bn_final", blocks))) == {blocks}  # with the last block


def test_layer_scales_formula():
  assert layer_scales(3, 0.5) == (0.125, 0.25, 0.5, 1.0)
  assert layer_scales(0, 0.5) == (1.0,)
  assert layer_scales(4, 0.5, min_scale=0.2) == (0.2, 0.2, 0.25, 0.5, 1.0)


# --- parity with timm's param_groups_layer_decay -------------------------------------------------

BLOCK = re.compile(r"(BasicBlock|BottleneckBlock|PreActBottleneck)_(\d+)")


def timm_module(case, name):
  """The module of the recorded torch model that an lrjax ResNet's top-level `name` stands for."""
  v2 = case["settings"]["model"].startswith("resnetv2")
  if m := BLOCK.fullmatch(name):
    k = int(m.group(2))
    for stage, size in enumerate(case["settings"]["stages"]):
      if k < size:
        return f"stages.{stage}.blocks.{k}" if v2 else f"layer{stage + 1}.{k}"
      k -= size
  names = {"conv_init": "stem.conv" if v2 else "conv1", "bn_init": "bn1", "bn_input": "stem.norm"}
  return {**names, "bn_final": "norm", "Dense_0": "head.fc" if v2 else "fc"}[name]


def timm_params(case):
  """{torch name: (layer id, lr_scale, weight_decay)} from the recorded groups."""
  out = {}
  for group in case["values"]:
    for name in group["params"]:
      out[name] = (group["layer"], group["lr_scale"], group["weight_decay"])
  return out


def lrjax_groups(case, params, depth_fn):
  s = case["settings"]
  # A base rate of 1.0 makes every group's schedule its factor, a Python float.
  return layer_decay_groups(
    params,
    1.0,
    s["layer_decay"],
    depth_fn,
    weight_decay=s["weight_decay"],
    min_scale=s["min_scale"],
  )


def test_every_model_and_decay_is_recorded():
  assert RECORD["versions"]["timm"].startswith("1.")
  models = {c["settings"]["model"] for c in CASES.values()}
  assert models == {
    "resnet-tiny",
    "resnet-resnet20",
    "resnet-resnet18",
    "resnetv2-preact_resnet_tutorial",
    "vit-depth4",
  }
  assert len(CASES) == 5 * 4 + 1


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if c.startswith("resnet")))
def test_resnet_factors_equal_timm_s(case_id):
  case = CASES[case_id]
  params = resnet_params(case["settings"]["model"].split("-", 1)[1])
  groups, labels = lrjax_groups(case, params, resnet_depths(params))
  timm = timm_params(case)
  assert max(v[0] for v in timm.values()) + 1 == case["settings"]["num_layers"]
  covered = set()
  for name, module_labels in labels.items():
    prefix = timm_module(case, name) + "."
    theirs = {n: v for n, v in timm.items() if n.startswith(prefix)}
    assert theirs, prefix
    covered |= set(theirs)
    ours = jax.tree.leaves(module_labels)
    assert {(int(g.split("_")[1]), groups[g]["schedule"]) for g in ours} == {
      v[:2] for v in theirs.values()
    }, name
    assert {groups[g]["weight_decay"] for g in ours} == {v[2] for v in theirs.values()}, name
  assert covered == set(timm)


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if c.startswith("vit")))
def test_a_user_depth_function_on_a_vit_gives_timm_s_groups(case_id):
  case = CASES[case_id]
  depth = case["settings"]["depth"]
  params = {}
  for name, shape in case["settings"]["shapes"].items():
    *parents, leaf = name.split(".")
    node = params
    for key in parents:
      node = node.setdefault(key, {})
    node[leaf] = jax.ShapeDtypeStruct(tuple(shape), jnp.float32)

  def vit_depth(path, leaf):
    if path[0] in ("cls_token", "pos_embed", "patch_embed"):
      return 0
    if path[0] == "blocks":
      return int(path[1]) + 1
    return depth if path[0] == "norm" else depth + 1

  groups, labels = lrjax_groups(case, params, vit_depth)
  ours = {
    ".".join(lrjax.groups.labels.path_names(path)): label
    for path, label in jax.tree_util.tree_leaves_with_path(labels)
  }
  timm = timm_params(case)
  assert set(ours) == set(timm)
  for name, label in ours.items():
    got = (int(label.split("_")[1]), groups[label]["schedule"], groups[label]["weight_decay"])
    assert got == timm[name], name


# --- bad input ------------------------------------------------------------------------------------


def test_a_label_with_no_group_is_named():
  params = tiny_params()
  labels = {"conv": {"kernel": "backbone"}, "bn": "no_decay", "head": "heads"}
  with pytest.raises(ValueError, match=r"labels must name one of the groups .*got 'heads' at head"):
    per_group(optax.sgd, GROUPS, labels)
  tx = per_group(optax.sgd, GROUPS, leaf_labels(lambda path, leaf: "stem"))
  with pytest.raises(ValueError, match=r"got 'stem' at bn/bias"):
    tx.init(params)


@pytest.mark.parametrize(
  "groups, match",
  [
    ({}, "groups must be a non-empty dict"),
    ({"a": 0.1}, r"groups\['a'\] must be a dict"),
    ({"a": dict(weight_decay=0.1)}, r"groups\['a'\] must have a 'schedule'"),
    ({"a": dict(schedule=0.1, momentum=0.9)}, r"takes only the keys .*got \['momentum'\]"),
    ({"a": dict(schedule=-0.1)}, r"groups\['a'\]\['schedule'\] must be .*got -0.1"),
    ({"a": dict(schedule=0.1, weight_decay=-1.0)}, r"\['weight_decay'\] must be >= 0, got -1.0"),
  ],
)
def test_bad_groups(groups, match):
  with pytest.raises(ValueError, match=match):
    per_group(optax.sgd, groups, "a")


def test_bad_optimizer():
  with pytest.raises(ValueError, match="optimizer must be a function of learning_rate, got 3"):
    per_group(3, GROUPS, "head")
  with pytest.raises(ValueError, match="optimizer must take a learning_rate argument"):
    per_group(optax.clip_by_global_norm, GROUPS, "head")
  with pytest.raises(ValueError, match="must return an optax transformation, got 0.1"):
    per_group(lambda learning_rate: learning_rate, GROUPS, "head")


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, float("nan"), "0.5", [0.5, 0.7]])
def test_layer_decay_outside_its_range(bad):
  with pytest.raises(ValueError, match=r"layer_decay must be .*got"):
    layer_decay_groups(tiny_params(), BASE, bad, lambda path, leaf: 0)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", None])
def test_a_bad_depth_is_named_with_its_leaf(bad):
  depth_fn = lambda path, leaf: bad if path == ("head", "bias") else 1
  message = f"depth_fn must give a non-negative integer depth, got {bad!r} for head/bias"
  with pytest.raises(ValueError, match=re.escape(message)):
    layer_depths(tiny_params(), depth_fn)


def test_other_bad_layer_decay_arguments():
  params = tiny_params()
  with pytest.raises(ValueError, match="depth_fn must be a function .* or a pytree of depths"):
    layer_decay_groups(params, BASE, 0.5, {"conv": 0})
  with pytest.raises(ValueError, match="min_scale must be in \\[0.0, 1.0\\], got 2.0"):
    layer_decay_groups(params, BASE, 0.5, lambda path, leaf: 0, min_scale=2.0)
  with pytest.raises(ValueError, match="weight_decay must be >= 0, got -0.1"):
    layer_decay_groups(params, BASE, 0.5, lambda path, leaf: 0, weight_decay=-0.1)
  with pytest.raises(ValueError, match="params must have at least one leaf"):
    layer_depths({}, lambda path, leaf: 0)
  with pytest.raises(ValueError, match="head_depth must be a non-negative integer, got -1"):
    layer_scales(-1, 0.5)


def test_resnet_depths_name_a_foreign_parameter():
  with pytest.raises(ValueError, match="got a parameter 'bn'"):
    resnet_depths(tiny_params())
  with pytest.raises(ValueError, match=r"got a parameter 'params' \(pass variables\['params'\]\)"):
    resnet_depths({"params": resnet_params("tiny")})


def test_bad_scaled_groups():
  with pytest.raises(ValueError, match=r"factors\['head'\] must be >= 0, got -10.0"):
    scaled_groups(BASE, {"head": -10.0})
  with pytest.raises(ValueError, match=r"weight_decay must name the groups of factors \['head'\]"):
    scaled_groups(BASE, {"head": 10.0}, {"body": 0.1})


def test_group_learning_rates_needs_one_per_group_state():
  state = optax.sgd(0.1).init(tiny_params())
  with pytest.raises(ValueError, match="exactly one lrjax.groups.per_group state, found 0"):
    group_learning_rates(state)
