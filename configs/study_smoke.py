"""A seconds-long study: the tiny model on synthetic data, 3 schedules x 2 seeds.

    lrjax compare --config study_smoke --workdir runs/study_smoke

Six runs of two epochs over 256 synthetic 16x16 images; a few seconds each on a CPU, most of it
compilation. It checks that the study machinery works end to end, not which schedule is best.
"""

import ml_collections

from lrjax.configs import smoke


def get_config():
  config = smoke.get_config()
  config.dataset = "synthetic:16x16x3:256:64:4"
  config.validation_fraction = 0.125  # 32 of the 256 training images: 7 steps an epoch
  # Snapshot Ensembles (Huang et al. 2017) reported for every arm whose schedule has cycles.
  config.snapshot_ensemble = True
  config.study = ml_collections.ConfigDict()
  config.study.schedules = {
    "constant": {"name": "constant", "value": 0.05},
    "linear": {"name": "linear_decay", "init_value": 0.05, "total_steps": {"fraction": 1.0}},
    "cosine": {"name": "cosine_decay", "init_value": 0.05, "decay_steps": {"fraction": 1.0}},
  }
  config.study.order = ("constant", "linear", "cosine")  # constant first: the baseline
  config.study.labels = {"constant": "Constant", "linear": "Linear decay", "cosine": "Cosine decay"}
  config.study.seeds = (0, 1)
  config.study.population = "never"  # one run at a time: the plainest path, and no probe
  # Tuning per arm, chosen on validation data (lrjax.compare.tuning); None: every arm as given.
  config.study.tune = None
  return config
