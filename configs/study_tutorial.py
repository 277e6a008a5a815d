"""The chapter's study with the Keras tutorial's network (about 0.9M parameters), no augmentation.

lrjax compare --config study_tutorial --workdir runs/study_tutorial
"""

from lrjax.configs import study_cifar10


def get_config():
  config = study_cifar10.get_config()
  config.model = "preact_resnet_tutorial"
  config.augment = False
  return config
