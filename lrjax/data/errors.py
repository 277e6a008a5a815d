"""The error a dataset loader raises when the data is not on this machine."""


class DatasetNotFoundError(ValueError):
  """A dataset is not available locally; the message says how to get it."""
