"""The chapter's table at the Keras tutorial's size: `--config tutorial:linear`.

A pre-activation bottleneck ResNet of about 0.9M parameters, CIFAR-10 without augmentation,
lr 0.1, 100 epochs, batch 128, SGD momentum 0.9, L2 5e-4. About 10x cheaper than ResNet-50.
"""

from lrjax.configs import default
from lrjax.configs.chapter_schedules import chapter_schedule


def get_config(variant: str = "constant"):
  config = default.get_config()
  config.model = "preact_resnet_tutorial"
  config.augment = False
  config.schedule = chapter_schedule(variant, init_lr=0.1, num_epochs=config.num_epochs)
  return config
