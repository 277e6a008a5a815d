"""The function study of the tests: `function_fns:train` on two schedules and two seeds (run with
`tests` on the Python path)."""

import ml_collections

from lrjax.configs import default


def get_config():
  config = default.get_config()
  config.num_epochs = 3
  config.schedule = {"name": "constant", "value": 1.0}
  config.user = ml_collections.ConfigDict(
    {"fail": "", "signal_at": -1, "sleep": 0.0, "scramble_test": False}
  )
  config.study = ml_collections.ConfigDict(
    {
      "train_fn": "function_fns:train",
      "steps_per_epoch": 4,
      "schedules": {
        "constant": {"name": "constant", "value": 1.0},
        "cosine": {"name": "cosine_decay", "init_value": 1.0, "decay_steps": {"fraction": 1.0}},
      },
      "seeds": (0, 1),
    }
  )
  return config
