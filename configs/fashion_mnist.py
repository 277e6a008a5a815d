"""Fashion-MNIST on a laptop CPU in minutes: `lrjax train --config fashion_mnist`.

The small ConvNet (0.1M parameters) on the real Fashion-MNIST IDX files (Debian package
dataset-fashion-mnist, or --config.data_dir), SGD momentum 0.9, linear decay from 0.1 to 0 over
5 epochs. Reaches about 91% test accuracy in about 2.5 minutes on two CPU cores. For the
ResNet-20 of He et al.: --config.model=resnet20 (about 4x slower).
"""

from lrjax.configs import default


def get_config():
  config = default.get_config()
  config.model = "convnet"
  config.dataset = "fashion_mnist"
  config.augment = False
  config.batch_size = 128
  config.num_epochs = 5
  config.schedule = {
    "name": "linear_decay",
    "init_value": 0.1,
    "total_steps": {"fraction": 1.0},
  }
  return config
