"""Checkpoints with Orbax: the train state plus a small JSON record of where the run stands.

Orbax writes each checkpoint to a temporary folder and renames it when complete, so a crash
never leaves a half-written checkpoint that a resumed run would read. A checkpoint damaged later
(a disk error, a partial copy) is found when it is read: it is moved aside to
`checkpoints/damaged/<step>` with a warning naming it, and the run resumes from the newest intact
one; with none intact, `DamagedCheckpointError` says so in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp
import tensorstore as ts  # Orbax's array store, installed with it


class DamagedCheckpointError(ValueError):
  """No checkpoint of a run could be read."""


@contextlib.contextmanager
def _orbax_errors_silenced():
  # Orbax logs an ERROR (through absl) for a checkpoint whose files it cannot read; lrjax reports
  # that checkpoint itself, in one warning naming it and where it went, so one line says it.
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    logger.setLevel(level)


def _read_back(item: str) -> None:
  """Reads every array of the Orbax pytree in folder `item` (and the records Orbax reads with
  them) as Orbax would, raising the first error.

  Orbax reads the arrays of a restore concurrently and, at the first error, closes the event loop
  they run on while the others are still in flight (a damaged index fails every one of them):
  TensorStore then calls back into the closed loop for each, and each prints a traceback,
  `RuntimeError: Event loop is closed`. Here every read is awaited, failed or not, before the loop
  closes, so a damaged checkpoint is found without a word printed, and Orbax reads only whole ones.
  """
  with open(os.path.join(item, "_METADATA"), encoding="utf-8") as f:
    metadata = json.load(f)
  names = [
    ".".join(str(key["key"]) for key in leaf["key_metadata"])
    for leaf in metadata["tree_metadata"].values()
    if leaf["value_metadata"]["value_type"] in ("jax.Array", "np.ndarray", "scalar")
    and not leaf["value_metadata"].get("skip_deserialize", False)
  ]
  # Orbax reads the arrays' own records (`array_metadatas/process_<i>`) alongside the arrays.
  records = os.path.join(item, "array_metadatas")
  for name in sorted(os.listdir(records)) if os.path.isdir(records) else []:
    with open(os.path.join(records, name), encoding="utf-8") as f:
      for record in json.load(f).get("array_metadatas", []):
        fields = record["array_metadata"]  # as Orbax takes them, KeyError or TypeError where not
        _ = fields["param_name"], tuple(fields["write_shape"]), tuple(fields["chunk_shape"])
  driver = "zarr3" if metadata.get("use_zarr3", False) else "zarr"

  def kvstore(name: str) -> dict:
    if metadata.get("use_ocdbt", True):
      base = {"driver": "file", "path": item + "/"}
      return {"driver": "ocdbt", "base": base, "path": name + "/"}
    return {"driver": "file", "path": os.path.join(item, name) + "/"}

  async def read(name: str) -> None:
    array = await ts.open({"driver": driver, "kvstore": kvstore(name)}, open=True)
    await array.read()

  async def read_all() -> list:
    return await asyncio.gather(*map(read, names), return_exceptions=True)

  for result in asyncio.run(read_all()):
    if isinstance(result, BaseException):
      raise result


class Checkpoints:
  """The checkpoints of one run, in `<workdir>/checkpoints/<step>`."""

  def __init__(self, workdir: str, keep: int = 2):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._keep = keep
    self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    with _orbax_errors_silenced():  # it reads every checkpoint's metadata, damaged ones too
      return ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
          max_to_keep=self._keep,
          create=True,
          cleanup_tmp_directories=True,
          enable_async_checkpointing=True,
        ),
      )

  def _set_aside(self, step: int, error: Exception) -> None:
    self._manager.close()
    damaged = os.path.join(self.directory, "damaged")
    os.makedirs(damaged, exist_ok=True)
    source = os.path.join(self.directory, str(step))
    target = os.path.join(damaged, str(step))
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(source, target)
    reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    print(
      f"lrjax: warning: checkpoint {source} is damaged ({type(error).__name__}: {reason}); "
      f"moved to {target}",
      file=sys.stderr,
    )
    self._manager = self._open()

  def restore_intact(
    self, like: dict[str, Any], accept: Callable[[dict], bool] = lambda meta: True
  ) -> tuple[dict | None, dict] | None:
    """(items, JSON record) of the newest checkpoint that reads back whole, setting damaged ones
    aside; None where there is no checkpoint at all.

    Args:
      like: the items' shapes, dtypes and shardings.
      accept: whether the record's checkpoint is the one wanted; where it is not, its items
        are not read (they may not even have `like`'s shapes), and None stands for them.

    Raises:
      DamagedCheckpointError: there are checkpoints, and none reads back whole.
    """
    if self.latest_step() is None:
      return None
    while (step := self.latest_step()) is not None:
      try:
        with _orbax_errors_silenced():
          meta = self.meta(step)
          return self.restore(like, step) if accept(meta) else (None, meta)
      except Exception as e:  # orbax/tensorstore raise many types for damaged bytes
        self._set_aside(step, e)
    raise DamagedCheckpointError(
      f"no intact checkpoint in {self.directory}: the damaged ones are in "
      f"{os.path.join(self.directory, 'damaged')}; delete the folder to start afresh"
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
    _read_back(os.path.join(self.directory, str(step), "state"))  # before Orbax reads it
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
