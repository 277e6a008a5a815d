"""A seconds-long run for tests: the tiny model on synthetic data."""

from lrjax.configs import default


def get_config():
  config = default.get_config()
  config.model = "tiny"
  config.dataset = "synthetic"
  config.augment = True
  config.batch_size = 32
  config.num_epochs = 2
  config.eval_batch_size = 64
  config.log_every_steps = 4
  config.progress = False
  config.tensorboard = False
  config.validation_fraction = 0.0  # the tests count this run's steps (8 an epoch on its data)
  config.schedule = {"name": "linear_decay", "init_value": 0.1, "total_steps": {"fraction": 1.0}}
  return config
