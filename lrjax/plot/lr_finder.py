"""The figure of a learning-rate range test (`lrjax find-lr`): loss against lr, the suggestion."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from lrjax.plot.figure import new_figure, save


def plot_range_test(result: Mapping[str, Any], path: str | os.PathLike) -> str:
  """Draws the loss per step and its smoothed curve over a log lr axis, with the suggested lr.

  Args:
    result: `lrjax.lr_finder.find_lr`'s result: "lrs", "losses", "suggested_lr", and
      "smoothed_losses" (the curve the suggestion read).
    path: the PNG file to write (its folder is created).

  Returns:
    The path written, as a string.

  Raises:
    ValueError: if `result` lacks those keys, or its lrs and losses differ in length or are empty.
  """
  keys = ("lrs", "losses", "smoothed_losses", "suggested_lr")
  missing = [k for k in keys if k not in result]
  if missing:
    raise ValueError(f"result must have {list(keys)}, missing {missing}")
  lrs, losses = np.asarray(result["lrs"]), np.asarray(result["losses"])
  smooth = np.asarray(result["smoothed_losses"])
  if lrs.shape != losses.shape or lrs.shape != smooth.shape or lrs.size == 0:
    raise ValueError(
      f"result['lrs'], ['losses'] and ['smoothed_losses'] must be non-empty and of one length, "
      f"got {lrs.size}, {losses.size} and {smooth.size}"
    )

  fig = new_figure(7, 4.2)
  ax = fig.subplots()
  ax.plot(lrs, losses, color="0.75", lw=1, label="loss per step")
  ax.plot(lrs, smooth, color="C0", lw=2, label="smoothed")
  suggested = result["suggested_lr"]
  ax.axvline(suggested, color="C3", ls="--", label=f"suggested lr {suggested:.3g}")
  ax.set_xscale("log")
  ax.set_xlabel("learning rate")
  ax.set_ylabel("training loss")
  ax.set_title("Learning-rate range test")
  top = np.nanpercentile(losses, 95)
  ax.set_ylim(max(0.0, np.nanmin(losses) * 0.9), top * 1.1)
  ax.grid(alpha=0.3, which="both")
  ax.legend()
  return save(fig, path)
