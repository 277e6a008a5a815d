"""The chapter's study, quick: seven schedules x 2 seeds on real Fashion-MNIST, on a 2-core CPU.

    lrjax compare --config configs/study_fashion_mnist.py --workdir runs/study_fmnist

The small ConvNet (0.1M parameters), 3 epochs over 12,800 training images per epoch and the full
10,000-image test set: 14 runs of about a minute each on two CPU cores. Same initialisation and
data order for every schedule of a seed.
"""

import ml_collections

from configs import default
from lrjax.train.chapter import CHAPTER_SCHEDULES, chapter_study


def get_config():
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
  config.study.seeds = (0, 1)  # a tuple, so --config.study.seeds="(0,1,2)" overrides it
  # "auto": one run at a time on CPU; elsewhere a seed's runs train as one vmapped population
  # where a probe finds that faster.
  config.study.population = "auto"
  return config
