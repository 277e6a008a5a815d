"""The chapter's study as it ran it: ResNet-50 (CIFAR stem) on CIFAR-10, lr 0.1, 100 epochs.

    lrjax compare --config study_cifar10 --workdir runs/study_cifar10

Seven schedules x 3 seeds = 21 runs of 100 epochs (about 39 PFLOP each). Needs CIFAR-10 through
tensorflow-datasets or the binary archive (--config.data_dir). For the cheaper tutorial-sized
network: --config.model=preact_resnet_tutorial --config.augment=False.
"""

import ml_collections

from lrjax.configs import default
from lrjax.configs.chapter_schedules import CHAPTER_SCHEDULES, chapter_study


def get_config():
  config = default.get_config()
  config.progress = True
  config.study = ml_collections.ConfigDict()
  config.study.schedules = chapter_study(init_lr=0.1, num_epochs=config.num_epochs)
  config.study.order = tuple(CHAPTER_SCHEDULES)  # constant first: the baseline
  config.study.seeds = (0, 1, 2)
  # "auto": one run at a time on CPU; elsewhere a seed's runs train as one vmapped population
  # where a probe finds that faster.
  config.study.population = "auto"
  return config
