"""The schedules page's figures: every registered schedule drawn by the build, and none left out.

`.. lrjax-schedule:: NAME` documents the factory `lrjax.NAME` (its docstring holds the formula)
followed by the figure of its registered example, which the build draws with
`lrjax.plot_schedules` into `docs/_generated/schedules/`. A registered schedule that no page shows
is a warning, so a new schedule fails the `-W` build until the schedules page documents it.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import lrjax

logger = logging.getLogger(__name__)

# The registered examples have a 100-step horizon; 20 steps more show what happens after it.
NUM_STEPS = 120
FIGURES = "_generated/schedules"


def example_call(name: str, example: dict[str, Any]) -> str:
  """`name(arg=value, ...)` for a registered example, nested schedules written as calls."""

  def show(value: Any) -> str:
    if isinstance(value, lrjax.Schedule):
      config = value.to_config()
      args = ", ".join(f"{k}={show(v)}" for k, v in config.items() if k != "name")
      return f"{config['name']}({args})"
    if isinstance(value, (list, tuple)):
      return "[" + ", ".join(show(v) for v in value) + "]"
    return repr(value)

  return f"{name}(" + ", ".join(f"{k}={show(v)}" for k, v in example.items()) + ")"


def fingerprint() -> str:
  """What the figures depend on: the schedules' and the plotting code, and the libraries drawing."""
  import jax
  import matplotlib

  import lrjax.plot
  import lrjax.schedules

  digest = hashlib.sha256(f"{NUM_STEPS} {jax.__version__} {matplotlib.__version__}".encode())
  for package in (lrjax.schedules, lrjax.plot):
    folder = os.path.dirname(package.__file__)
    for name in sorted(os.listdir(folder)):
      if name.endswith(".py"):
        with open(os.path.join(folder, name), "rb") as f:
          digest.update(name.encode() + f.read())
  return digest.hexdigest()


def comparisons() -> dict[str, dict[str, lrjax.Schedule]]:
  """Figures that set variants of a schedule side by side (`.. lrjax-comparison:: NAME`)."""
  wsd = dict(peak_value=0.1, total_steps=100, warmup_fraction=0.2, decay_fraction=0.3)
  return {
    "warmup_shapes": {
      shape: lrjax.warmup_stable_decay(**wsd, init_value=0.005, warmup_shape=shape)
      for shape in ("linear", "cosine", "1-sqrt", "exponential")
    },
    "wsd_stable_and_decay": {
      "constant, 1-sqrt decay": lrjax.warmup_stable_decay(**wsd, decay_shape="1-sqrt"),
      "constant, cosine decay": lrjax.warmup_stable_decay(**wsd, decay_shape="cosine"),
      "power 0.5 (rsqrt), linear decay": lrjax.warmup_stable_decay(**wsd, stable_shape="power"),
    },
  }


def groups_comparison() -> dict[str, lrjax.Schedule]:
  """Layer-wise decay on resnet20: every depth's rate, from the stem to the head."""
  import jax

  from lrjax.models import registry

  model = registry.create_model("resnet20", 10)
  shapes = jax.eval_shape(lambda: registry.init_variables(model, jax.random.key(0), (32, 32, 3)))
  params = shapes["params"]
  base = lrjax.warmup(lrjax.cosine_decay(0.1, 100), 10)
  groups, _ = lrjax.layer_decay_groups(params, base, 0.75, lrjax.resnet_depths(params))
  depths = sorted(int(g.split("_")[1]) for g in groups if g.endswith("_decay") and "no_" not in g)
  # Every other depth, so that no two lines share a colour; the head is the last depth.
  shown = [d for d in depths if d % 2 == depths[-1] % 2]
  names = {depths[0]: " (stem)", depths[-1]: " (head)"}
  return {f"depth {d}{names.get(d, '')}": groups[f"layer_{d}_decay"]["schedule"] for d in shown}


def draw_plateau(path: str) -> None:
  """A cosine with a warmup, alone and scaled by `lrjax.plateau` on a loss that stalls."""
  import numpy as np
  import optax

  from lrjax.plot.figure import new_figure, save

  schedule = lrjax.warmup(lrjax.cosine_decay(0.1, NUM_STEPS - 10), 10)
  tx = optax.chain(optax.sgd(schedule), lrjax.plateau(0.5, patience=8, warmup_steps=10))
  params = {"w": np.zeros((), np.float32)}
  state = tx.init(params)
  # A loss that improves for 40 steps and then stalls with noise.
  rng = np.random.default_rng(0)
  losses = 1.0 / (1.0 + 0.05 * np.minimum(np.arange(NUM_STEPS), 40))
  losses = losses + 0.002 * rng.standard_normal(NUM_STEPS)
  rates = []
  for t in range(NUM_STEPS):
    _, state = tx.update({"w": np.ones((), np.float32)}, state, params, value=losses[t])
    rates.append(float(schedule(t)) * float(lrjax.plateau_scale(state)))
  fig = new_figure(7.5, 4.2)
  ax = fig.subplots()
  ax.plot(np.asarray(schedule(np.arange(NUM_STEPS))), label="warmup + cosine", lw=1.6)
  ax.plot(rates, label="the same, scaled by lrjax.plateau(0.5, patience=8)", lw=1.6)
  twin = ax.twinx()
  twin.plot(losses, color="0.6", lw=1, label="metric (value=)")
  twin.set_ylabel("metric")
  ax.set_xlabel("step")
  ax.set_ylabel("learning rate")
  ax.grid(alpha=0.3)
  lines = ax.get_legend_handles_labels()
  more = twin.get_legend_handles_labels()
  ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper right")
  save(fig, path)


def draw_figures(app: Sphinx) -> None:
  folder = os.path.join(app.srcdir, FIGURES)
  stamp = os.path.join(folder, "fingerprint.txt")
  names = sorted(lrjax.registry()) + sorted(comparisons()) + ["layer_decay", "plateau"]
  key = fingerprint()
  # Evaluating every example eagerly and drawing it takes most of a build: redraw only when the
  # code the figures come from has changed.
  if os.path.exists(stamp) and all(os.path.exists(os.path.join(folder, f"{n}.png")) for n in names):
    with open(stamp) as f:
      if f.read() == key:
        return
  for name in sorted(lrjax.registry()):
    entry = lrjax.registry()[name]
    schedule = entry.factory(**entry.example)
    # The momentum companions' values are momenta, not learning rates.
    label = "momentum" if name.endswith("_momentum") else "learning rate"
    lrjax.plot_schedules(
      {name: schedule},
      NUM_STEPS,
      os.path.join(folder, f"{name}.png"),
      panels=True,
      value_label=label,
    )
  for name, schedules in comparisons().items():
    lrjax.plot_schedules(schedules, NUM_STEPS, os.path.join(folder, f"{name}.png"))
  lrjax.plot_schedules(groups_comparison(), NUM_STEPS, os.path.join(folder, "layer_decay.png"))
  draw_plateau(os.path.join(folder, "plateau.png"))
  with open(stamp, "w") as f:
    f.write(key)


class ScheduleDirective(SphinxDirective):
  required_arguments = 1

  def run(self) -> list[nodes.Node]:
    name = self.arguments[0]
    entry = lrjax.registry().get(name)
    if entry is None:
      raise self.error(f"{name!r} is not a registered schedule; known: {sorted(lrjax.registry())}")
    self.env.lrjax_schedules = getattr(self.env, "lrjax_schedules", {})
    self.env.lrjax_schedules.setdefault(self.env.docname, set()).add(name)
    # An absolute image path is taken from the source folder, whichever page includes it.
    lines = [
      f".. autofunction:: lrjax.{name}",
      "",
      f".. figure:: /{FIGURES}/{name}.png",
      f"   :alt: {name} over {NUM_STEPS} steps",
      "",
      f"   ``{example_call(name, entry.example)}`` over steps 0 to {NUM_STEPS - 1}.",
    ]
    container = nodes.container()
    self.state.nested_parse(
      StringList(lines, source=self.env.docname), self.content_offset, container
    )
    return container.children


class ComparisonDirective(SphinxDirective):
  required_arguments = 1

  def run(self) -> list[nodes.Node]:
    name = self.arguments[0]
    schedules = comparisons().get(name)
    if schedules is None:
      raise self.error(f"{name!r} is not a comparison figure; known: {sorted(comparisons())}")
    lines = [
      f".. figure:: /{FIGURES}/{name}.png",
      f"   :alt: {', '.join(schedules)} over {NUM_STEPS} steps",
      "",
      "   " + "; ".join(f"{label}: ``{s!r}``" for label, s in schedules.items()),
    ]
    container = nodes.container()
    self.state.nested_parse(
      StringList(lines, source=self.env.docname), self.content_offset, container
    )
    return container.children


def purge(app: Sphinx, env: Any, docname: str) -> None:
  getattr(env, "lrjax_schedules", {}).pop(docname, None)


def merge(app: Sphinx, env: Any, docnames: set[str], other: Any) -> None:
  env.lrjax_schedules = getattr(env, "lrjax_schedules", {})
  for docname, names in getattr(other, "lrjax_schedules", {}).items():
    if docname in docnames:
      env.lrjax_schedules[docname] = names


def check_every_schedule_shown(app: Sphinx, env: Any) -> None:
  shown = set().union(*getattr(env, "lrjax_schedules", {}).values())
  missing = sorted(set(lrjax.registry()) - shown)
  if missing:
    logger.warning(
      "registered schedules missing from the docs (add `.. lrjax-schedule::`): %s", missing
    )


def setup(app: Sphinx) -> dict[str, Any]:
  app.connect("builder-inited", draw_figures)
  app.add_directive("lrjax-schedule", ScheduleDirective)
  app.add_directive("lrjax-comparison", ComparisonDirective)
  app.connect("env-purge-doc", purge)
  app.connect("env-merge-info", merge)
  app.connect("env-check-consistency", check_every_schedule_shown)
  return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
