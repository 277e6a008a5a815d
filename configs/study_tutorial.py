"""The chapter's study with the Keras tutorial's network (about 0.9M parameters), no augmentation.

lrjax compare --config configs/study_tutorial.py --workdir runs/study_tutorial
"""

from configs import study_cifar10


def get_config():
  config = study_cifar10.get_config()
  config.model = "preact_resnet_tutorial"
  config.augment = False
  return config
