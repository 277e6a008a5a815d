"""The chapter's experiment with one of its schedules: `--config chapter:linear`.

Variants: constant, time_based, drop_based, linear, polynomial, triangle, cosine_annealing
(ResNet-50 CIFAR stem, CIFAR-10, lr 0.1, 100 epochs, batch 128, SGD momentum 0.9).
"""

from lrjax.configs import default
from lrjax.configs.chapter_schedules import chapter_schedule


def get_config(variant: str = "constant"):
  config = default.get_config()
  config.schedule = chapter_schedule(variant, init_lr=0.1, num_epochs=config.num_epochs)
  return config
