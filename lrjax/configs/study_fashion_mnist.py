"""The chapter's study on real Fashion-MNIST, sized for a 2-core CPU.

    lrjax compare --config study_fashion_mnist --workdir runs/study          # quick
    lrjax compare --config study_fashion_mnist:medium --workdir runs/medium

The small ConvNet (0.1M parameters), 3 epochs over 12,800 training images per epoch and the full
10,000-image test set, seven schedules; the same initialisation and data order for every
schedule of a seed. "quick" (the default) trains 2 seeds: 14 runs of about a minute each on two
CPU cores. "medium" trains 5 seeds (35 runs), enough for the paired t-test to tell schedules
apart (4 degrees of freedom instead of 1).
"""

import ml_collections

from lrjax.configs import default
from lrjax.configs.chapter_schedules import CHAPTER_SCHEDULES, chapter_study

SEEDS = {"quick": (0, 1), "medium": (0, 1, 2, 3, 4)}


def get_config(size: str = "quick"):
  if size not in SEEDS:
    raise ValueError(f"size must be one of {tuple(SEEDS)}, got {size!r}")
  config = default.get_config()
  config.model = "convnet"
  config.dataset = "fashion_mnist"
  config.train_limit = 12_800
  config.augment = False
  config.num_epochs = 3
  config.progress = False
  config.tensorboard = False
  config.study = ml_collections.ConfigDict()
  config.study.schedules = chapter_study(init_lr=0.1, num_epochs=config.num_epochs)
  config.study.order = tuple(CHAPTER_SCHEDULES)  # constant first: the baseline
  config.study.seeds = SEEDS[size]  # a tuple, so --config.study.seeds="(0,1,2)" overrides it
  # "auto": one run at a time on CPU; elsewhere a seed's runs train as one vmapped population
  # where a probe finds that faster.
  config.study.population = "auto"
  return config
