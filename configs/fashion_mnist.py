"""Fashion-MNIST on a laptop CPU in minutes: `lrjax train --config configs/fashion_mnist.py`.

ResNet-20-style network (0.27M parameters) on the real Fashion-MNIST IDX files (Debian package
dataset-fashion-mnist, or --config.data_dir), SGD momentum 0.9, linear decay from 0.05 per step.
Reaches about 90% test accuracy.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model = "resnet20"
  config.dataset = "fashion_mnist"
  config.augment = False
  config.weight_decay = 5e-4
  config.batch_size = 128
  config.num_epochs = 3
  config.schedule = {"name": "linear_decay", "init_value": 0.05, "total_steps": {"fraction": 1.0}}
  return config
