"""How each arm of a study is set up, generated from its config and its runs: the report's arms
table, so that every difference between the arms is on the page.

For each arm: its optimizer, momentum and weight decay (the study's unless the arm says why it
changes them, `config.study.arms.<arm>.why`), its schedule's shape, whether the rate changes per
step or per epoch, its warmup (the leading steps over which the rate rises, read from the
schedule as the runs resolved it), its parameter groups where an arm has some
(`config.param_groups`), and the reasons it gave.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lrjax import stats
from lrjax.config.param_groups import LAYER_DECAY, WEIGHT_DECAY_ON_KEY
from lrjax.config.study import Study
from lrjax.schedules.config import from_config

WRAPPERS = ("scale",)  # a tuning point's factor: not part of the arm's shape


def shape(config: Mapping[str, Any]) -> str:
  """A schedule config's shape in words: its name, with the schedule it wraps in parentheses
  (`warmup(constant)`, `per_epoch(linear_decay)`); a tuning factor left out.

  Args:
    config: a schedule config (`lrjax.from_config`'s).
  """
  inner = config.get("schedule")
  name = config.get("name", "?")
  if isinstance(inner, Mapping):
    inside = shape(inner)
    return inside if name in WRAPPERS else f"{name}({inside})"
  return name


def warmup_steps(config: Mapping[str, Any], total_steps: int) -> int:
  """The leading steps over which the schedule's rate rises (0 where it starts at its highest).

  Args:
    config: the schedule config, durations in steps (as a run records it).
    total_steps: the run's length.
  """
  lr = np.asarray(from_config(dict(config))(np.arange(max(total_steps, 2))), np.float64)
  falls = np.flatnonzero(np.diff(lr) <= 0)
  return int(falls[0]) if falls.size else len(lr) - 1


def groups_words(groups: Mapping[str, Any]) -> str:
  """An arm's parameter groups in words: each group's pattern, factor and own weight decay, the
  layer decay, and "decay on all" where weight decay is not on the kernels alone; "" for none.

  Args:
    groups: its `config.param_groups`.
  """
  parts = []
  for name, g in sorted(groups.items()):
    if name not in (LAYER_DECAY, WEIGHT_DECAY_ON_KEY):
      own = "" if g.get("weight_decay") is None else f", weight decay {g['weight_decay']:g}"
      parts.append(f"{name} `{g['match']}` x{g.get('lr_scale', 1.0):g}{own}")
  if groups.get(LAYER_DECAY) is not None:
    parts.append(f"layer decay {groups[LAYER_DECAY]:g}")
  if groups.get(WEIGHT_DECAY_ON_KEY, "kernels") != "kernels":
    parts.append("decay on all")
  return "; ".join(parts)


def setup(study: Study, runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
  """Each arm's setup (see the module docstring), keyed by arm; warmup is None for an arm with
  no finished run yet.

  Args:
    study: the study.
    runs: its finished runs (`lrjax.compare.results.collect`'s), whose schedules are read.
  """
  out = {}
  for name in study.names:
    e = study.run(name, study.seeds[0], study.budget_list()[0])
    recorded = next((r for r in runs if r.get("arm") == name and r.get("schedule_config")), None)
    warmup = total = None
    if recorded is not None:
      total = int(recorded["total_steps"])
      warmup = warmup_steps(recorded["schedule_config"], total)
    schedule = shape(e.schedule)
    groups = groups_words(e.param_groups)
    out[name] = {
      "optimizer": e.optimizer,
      "momentum": e.momentum,
      "nesterov": e.nesterov,
      "weight_decay": e.weight_decay,
      "schedule": schedule,
      "per": "epoch" if "per_epoch(" in schedule else "step",
      "warmup_steps": warmup,
      "total_steps": total,
      "why": study.reasons(name),
      **({"groups": groups} if groups else {}),  # a study without groups records what it did
    }
  return out


def lines(results: Mapping[str, Any]) -> list[str]:
  """The report's section (empty where the results hold no setup: an older results.json).

  Args:
    results: a study's results.
  """
  arms = results.get("arms_setup")
  if not arms:
    return []
  out = [
    "## How the arms are set up",
    "",
    "From the study's config and its runs' schedules: every setting an arm shares with the "
    "others is the study's; a different one comes with the reason the arm gave. Warmup: the "
    "leading steps over which the rate rises. Weight decay is coupled L2 on the kernels for "
    "every optimizer but adamw (decoupled).",
    "",
  ]
  grouped = any(a.get("groups") for a in arms.values())  # a column only where an arm has groups
  head = ["Arm", "Optimizer", "Momentum", "Weight decay", "Schedule", "Changes per", "Warmup"]
  align = ["---", "---", "---:", "---:", "---", "---", "---:"]
  head, align = head + ["Groups"] * grouped + ["Why"], align + ["---"] * grouped + ["---"]
  out += ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
  for name, a in arms.items():
    warmup = "n/a"
    if a["warmup_steps"] is not None:
      share = 100 * a["warmup_steps"] / max(a["total_steps"], 1)
      warmup = f"{a['warmup_steps']} ({share:.0f}%)" if a["warmup_steps"] else "none"
    why = "; ".join(f"{k}: {v}" for k, v in a["why"].items())
    momentum = f"{a['momentum']:g}" + (" (Nesterov)" if a["nesterov"] else "")
    cells = [
      stats.label(results, name),
      a["optimizer"],
      momentum,
      f"{a['weight_decay']:g}",
      f"`{a['schedule']}`",
      a["per"],
      warmup,
      *([a.get("groups") or "all 1x"] if grouped else []),
      why,
    ]
    out.append("| " + " | ".join(str(c).replace("|", r"\|") for c in cells) + " |")
  return out
