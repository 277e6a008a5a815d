"""The arms of the study beyond the chapter, for any peak learning rate and budget.

* "wsd_1sqrt": warmup-stable-decay, constant at the peak, then a 1-sqrt cooldown over the last
  20% of training (Hägele et al. 2024); with budgets it is forked: one trunk per seed.
* "schedule_free_sgd": Schedule-Free SGD (Defazio et al. 2024), a 5% linear warmup to a constant
  lr of 10x the SGD peak (its fast iterate z takes plain steps: SGD's momentum 0.9 scales steps by
  1 / (1 - 0.9) = 10), evaluated at its averaged point.
* "prodigy": learning-rate-free (Mishchenko and Defazio 2023) with optax's defaults, on the
  schedule optax recommends for it: a multiplier warming up over the first 5% to 1, then falling
  linearly to 0 at the end.
* "dog": learning-rate-free (Ivgi et al. 2023) with optax's defaults; its schedule a constant
  multiplier of 1, as its authors run it.

The tuned study adds, beside the chapter's per-epoch forms, the per-step decays to zero that
current practice runs ("linear_to_zero", "cosine_to_zero": a new rate every step, 0 at the last),
and WSD with a linear cooldown beside the 1-sqrt one ("wsd_linear"), the comparison of Hägele et
al. 2024 (the chapter's "linear" changes once an epoch and never reaches 0: 0.1, 0.067, 0.033 at
3 epochs; its "cosine_annealing" restarts every epoch).

Every arm shares the study's momentum and weight decay (`lrjax.optimizers` applies the same
coupled L2 to every optimizer but adamw); none overrides a shared setting. The tuned variants
("tuned", "tuned_budgets") tune every arm over a grid of factors of its schedule (`TUNE`: 0.25x
to 4x, five points, by successive halving on tuning seeds that are not final seeds) and compare
the arms each at its best factor on validation data (`lrjax.compare.tuning`), over five seeds.
"""

from __future__ import annotations

from typing import Any

from lrjax.configs.chapter_schedules import CHAPTER_SCHEDULES
from lrjax.configs.chapter_schedules import LABELS as CHAPTER_LABELS

BEYOND = ("wsd_1sqrt", "schedule_free_sgd", "prodigy", "dog")
LABELS = {
  "wsd_1sqrt": "WSD 1-sqrt",
  "schedule_free_sgd": "Schedule-free SGD",
  "prodigy": "Prodigy",
  "dog": "DoG",
  "cosine": "Cosine decay",
  "linear_to_zero": "Linear to 0, per step",
  "cosine_to_zero": "Cosine to 0, per step",
  "wsd_linear": "WSD linear",
}


def beyond_arms(peak: float = 0.1) -> dict[str, dict[str, Any]]:
  constant_one = {"name": "constant", "value": 1.0}
  return {
    "wsd_1sqrt": {"wsd_fork": {"peak_value": peak, "cooldown": 0.2, "decay_shape": "1-sqrt"}},
    "schedule_free_sgd": {
      "optimizer": "schedule_free_sgd",
      "schedule": {
        "name": "warmup",
        "schedule": {"name": "constant", "value": 10 * peak},
        "warmup_steps": {"fraction": 0.05},
        "init_value": 0.0,
      },
    },
    "prodigy": {
      "optimizer": "prodigy",
      "schedule": {
        "name": "warmup",
        "schedule": {"name": "linear_decay", "init_value": 1.0, "total_steps": {"fraction": 0.95}},
        "warmup_steps": {"fraction": 0.05},
        "init_value": 0.0,
      },
    },
    "dog": {"optimizer": "dog", "schedule": constant_one},
  }


def per_step_arms(peak: float = 0.1) -> dict[str, dict[str, Any]]:
  """The per-step decays to zero and WSD's linear cooldown that the tuned study adds."""
  return {
    "linear_to_zero": {
      "schedule": {"name": "linear_decay", "init_value": peak, "total_steps": {"fraction": 1.0}}
    },
    "cosine_to_zero": {
      "schedule": {"name": "cosine_decay", "init_value": peak, "decay_steps": {"fraction": 1.0}}
    },
    "wsd_linear": {"wsd_fork": {"peak_value": peak, "cooldown": 0.2, "decay_shape": "linear"}},
  }


def budget_arms(peak: float = 0.1) -> dict[str, dict[str, Any]]:
  """Constant, linear decay to zero, cosine to zero, and forked WSD 1-sqrt, at any budget."""
  return {
    "constant": {"schedule": {"name": "constant", "value": peak}},
    "linear": {
      "schedule": {"name": "linear_decay", "init_value": peak, "total_steps": {"fraction": 1.0}}
    },
    "cosine": {
      "schedule": {"name": "cosine_decay", "init_value": peak, "decay_steps": {"fraction": 1.0}}
    },
    "wsd_1sqrt": beyond_arms(peak)["wsd_1sqrt"],
  }


# Each arm at 0.25x, 0.5x, 1x, 2x and 4x its schedule (16x from end to end), tuned by halving.
TUNE = {"lr_scale": {"log_range": [0.25, 4.0], "num": 5}}  # tuning seeds: 1000, 1001
# Beside the chapter's seven.
TUNED = (
  "linear_to_zero",
  "cosine_to_zero",
  "wsd_1sqrt",
  "wsd_linear",
  "schedule_free_sgd",
  "prodigy",
)


def wsd_schedule(peak: float, cooldown: float = 0.2, shape: str = "1-sqrt") -> dict[str, Any]:
  """WSD as a plain schedule over any run's length: constant at the peak, then the cooldown."""
  return {
    "name": "warmup_stable_decay",
    "peak_value": peak,
    "warmup_steps": 0,
    "stable_steps": {"fraction": 1.0 - cooldown},
    "decay_steps": {"fraction": cooldown},
    "decay_shape": shape,
  }


def use_variant(config: Any, variant: str, budgets: tuple[int, ...], peak: float = 0.1) -> None:
  """Turns a study of the chapter's schedules into its "beyond" variant (the four arms added),
  its "budgets" variant (`budget_arms` at each of `budgets`), or their tuned forms ("tuned": the
  chapter's seven, `per_step_arms`, WSD 1-sqrt, Schedule-Free SGD and Prodigy; "tuned_budgets":
  `budget_arms` with WSD as a plain schedule per budget), each arm at its own factor chosen on
  validation data; any other variant: unchanged."""
  if variant == "tuned":
    arms = {**beyond_arms(peak), **per_step_arms(peak)}
    config.study.arms = {n: arms[n] for n in TUNED}
    config.study.order = (*CHAPTER_SCHEDULES, *TUNED)
    config.study.labels = {**CHAPTER_LABELS, **LABELS}
    config.study.tune = TUNE
  elif variant == "tuned_budgets":
    use_variant(config, "budgets", budgets, peak)
    config.study.arms["wsd_1sqrt"] = {"schedule": wsd_schedule(peak)}
    config.study.tune = TUNE
  elif variant == "beyond":
    config.study.arms = beyond_arms(peak)
    config.study.order = (*CHAPTER_SCHEDULES, *BEYOND)
    config.study.labels = {**CHAPTER_LABELS, **LABELS}
  elif variant == "budgets":
    del config.study["schedules"]
    config.study.arms = budget_arms(peak)
    config.study.order = ("constant", "linear", "cosine", "wsd_1sqrt")
    config.study.labels = {**CHAPTER_LABELS, **LABELS}
    config.study.budgets = budgets
