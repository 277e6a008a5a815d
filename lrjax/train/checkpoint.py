"""Checkpoints with Orbax: the train state plus a small JSON record of where the run stands.

Orbax writes each checkpoint to a temporary folder and renames it when complete, so a crash
never leaves a half-written checkpoint that a resumed run would read.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpoints:
  """The checkpoints of one run, in `<workdir>/checkpoints/<step>`."""

  def __init__(self, workdir: str, keep: int = 2):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._manager = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=True,
        cleanup_tmp_directories=True,
        enable_async_checkpointing=True,
      ),
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, items: dict[str, Any], meta: dict[str, Any]) -> None:
    self._manager.save(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardSave(items), meta=ocp.args.JsonSave(meta)),
      force=True,
    )

  def restore(self, like: dict[str, Any], step: int | None = None) -> tuple[dict, dict]:
    """Restores the items (with `like`'s shapes, dtypes and shardings) and the JSON record."""
    step = self.latest_step() if step is None else step
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    restored = self._manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
      ),
    )
    return restored["state"], restored["meta"]

  def meta(self, step: int | None = None) -> dict:
    """The JSON record alone (to decide whether the state is worth restoring)."""
    step = self.latest_step() if step is None else step
    return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
