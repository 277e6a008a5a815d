"""The chapter's schedules as experiment schedule configs, for any initial lr and number of epochs.

Durations are written in epochs (`{"epochs": e}`) and resolved to steps by `resolve_schedule`.
The chapter's per-epoch formulas (drop-based, linear, polynomial) are wrapped in `per_epoch`, so
the learning rate is held for a whole epoch as the Keras callback in the chapter's experiment did;
time-based decay is per iteration (Keras's `decay=` argument), with the chapter's stated rule
decay = initial_lr / epochs. The chapter's worked example says 0.01 for 0.1 over 100 epochs,
which contradicts that rule (0.1 / 100 = 0.001): the rule is followed.
"""

from __future__ import annotations

from typing import Any

CHAPTER_SCHEDULES = (
  "constant",
  "time_based",
  "drop_based",
  "linear",
  "polynomial",
  "triangle",
  "cosine_annealing",
)


def _per_epoch(schedule: dict[str, Any]) -> dict[str, Any]:
  return {"name": "per_epoch", "schedule": schedule, "steps_per_epoch": {"epochs": 1}}


def chapter_schedule(name: str, init_lr: float = 0.1, num_epochs: int = 100) -> dict[str, Any]:
  """The schedule config of one of the chapter's schedules (see CHAPTER_SCHEDULES)."""
  drop_every = max(1, num_epochs // 10)  # the chapter: x0.5 every 10 epochs over 100 epochs
  table = {
    "constant": {"name": "constant", "value": init_lr},
    "time_based": {
      "name": "time_based_decay",
      "init_value": init_lr,
      "decay_rate": init_lr / num_epochs,
    },
    "drop_based": _per_epoch(
      {"name": "step_decay", "init_value": init_lr, "drop_factor": 0.5, "drop_every": drop_every}
    ),
    "linear": _per_epoch(
      {"name": "linear_decay", "init_value": init_lr, "total_steps": num_epochs}
    ),
    "polynomial": _per_epoch(
      {"name": "polynomial_decay", "init_value": init_lr, "total_steps": num_epochs, "power": 5.0}
    ),
    "triangle": {
      "name": "triangle",
      "peak_value": init_lr,
      "warmup_steps": {"fraction": 0.1},
      "total_steps": {"fraction": 1.0},
    },
    "cosine_annealing": {
      "name": "cosine_annealing",
      "peak_value": init_lr,
      "total_steps": {"fraction": 1.0},
      "num_cycles": max(1, min(5, num_epochs)),
    },
  }
  if name not in table:
    raise ValueError(f"schedule must be one of {list(CHAPTER_SCHEDULES)}, got {name!r}")
  return table[name]


# Display names, as the chapter's Table 1.1 heads its columns.
LABELS = {
  "constant": "Constant",
  "time_based": "Time based decay",
  "drop_based": "Drop based decay",
  "linear": "Linear decay",
  "polynomial": "Polynomial decay",
  "triangle": "Triangle",
  "cosine_annealing": "Cosine annealing",
}


def chapter_study(init_lr: float = 0.1, num_epochs: int = 100) -> dict[str, dict[str, Any]]:
  """All of the chapter's schedules (constant first: the baseline), by name."""
  return {name: chapter_schedule(name, init_lr, num_epochs) for name in CHAPTER_SCHEDULES}
