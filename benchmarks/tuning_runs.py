"""What a tuning run costs, evaluating as every run does against as a tuning run does.

    python benchmarks/tuning_runs.py              # about 4 minutes on 2 CPU cores
    python benchmarks/tuning_runs.py --markdown   # the table again from tuning_runs.json

One run of `study_fashion_mnist:tuned`'s first arm (the ConvNet, 3 epochs of 12,800 training
images) trained two ways, alternating round by round in one process after a warm-up round (so
neither pays a compilation the other does not): evaluating the test and validation splits at
every epoch's end, as a final run does, and evaluating the validation split alone at the last
epoch, as a tuning run does (`lrjax.compare.cell`: no phase reads a tuning run's test data).
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np
from timing import build_run, measure_or_reread

from lrjax import config as config_lib
from lrjax.config.study import Study
from lrjax.train.trainer import Member, Trainer

STEM = "tuning_runs"
WAYS = {
  "every epoch, test and validation (a final run)": {},
  "the last epoch, validation alone (a tuning run)": {
    "splits": ("validation",),
    "every_epoch": False,
  },
}


def measure(rounds: int = 2) -> dict:
  study = Study.of(config_lib.load("study_fashion_mnist:tuned"))
  arm = study.names[0]
  experiment = study.run(arm, study.tune.seeds[0]).replace({"progress": False})
  run = build_run(experiment)
  seconds: dict[str, list[float]] = {way: [] for way in WAYS}
  for r in range(rounds + 1):  # round 0 warms up (compiles) both ways
    for way, evaluation in WAYS.items() if r % 2 == 0 else list(WAYS.items())[::-1]:
      with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        Trainer([Member(run, tmp)], tmp, keep=False, **evaluation).fit()
        if r:
          seconds[way].append(time.perf_counter() - t)
      print(f"round {r}: {way}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
  return {
    "arm": arm,
    "epochs": experiment.num_epochs,
    "train_images": run.num_train,
    "validation_images": len(run.dataset.validation_labels),
    "test_images": len(run.dataset.test_labels),
    "runtime": run.runtime.status(),
    "rounds": rounds,
    "seconds": seconds,
  }


def markdown(r: dict) -> str:
  medians = {way: float(np.median(v)) for way, v in r["seconds"].items()}
  final, tuning = list(WAYS)
  lines = [
    f"One run of `{r['arm']}` in `study_fashion_mnist:tuned` ({r['epochs']} epochs of "
    f"{r['train_images']:,} training images; {r['validation_images']:,} validation and "
    f"{r['test_images']:,} test images), {r['runtime']}; medians of {r['rounds']} alternating "
    "rounds after a warm-up round.",
    "",
    "| Evaluates | Seconds a run |",
    "|---|---:|",
  ]
  lines += [f"| {way} | {medians[way]:.1f} |" for way in WAYS]
  lines += ["", f"A tuning run takes {medians[tuning] / medians[final]:.2f}x a final run's time."]
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  measure_or_reread(STEM, measure, markdown)
