"""The few steps every figure shares: a new figure, integer epoch ticks, saving a PNG."""

from __future__ import annotations

import os
from typing import Any

DPI = 110


def new_figure(width: float, height: float) -> Any:
  """A `matplotlib.figure.Figure` of `width` x `height` inches, tied to no GUI backend."""
  try:
    from matplotlib.figure import Figure
  except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
      "drawing figures needs matplotlib: pip install 'lrjax[plot]'", name=e.name
    ) from e
  return Figure(figsize=(width, height))


def integer_epochs(ax: Any) -> None:
  from matplotlib.ticker import MaxNLocator

  ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def save(fig: Any, path: str | os.PathLike) -> str:
  """Lays out `fig` and writes it as a PNG at `path` (its folder is created); returns the path."""
  path = os.fspath(path)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.tight_layout()
  # A Figure without pyplot has no canvas manager: savefig picks the PNG writer by extension.
  fig.savefig(path, dpi=DPI)
  return path
