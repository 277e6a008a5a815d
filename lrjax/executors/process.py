"""The cells trained in this process, one after another: the default executor.

Several processes on one workdir (one per GPU, `srun -n N`, or by hand) each run this executor:
a cell another process holds comes back `Held`, and the loop (`base.run_cells`) tries it again
later, so every process ends once all cells are done. SIGTERM or SIGINT reach the cell in
training, which saves a checkpoint and comes back `Stopped`: the study stops, and the command
exits with status 75. This process was set up with the study's runtime where it started (the
command line's `main`, or the caller of the Python API), so nothing is set up here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lrjax.executors.base import Executor, Outcome


class InProcess(Executor):
  capacity = 1

  def __init__(self):
    self._outcomes: dict[int, Outcome] = {}
    self._count = 0

  def submit(self, cells: Sequence[Any], work: Callable[[Any], Outcome]) -> list[int]:
    handles = []
    for cell in cells:
      self._count += 1
      self._outcomes[self._count] = work(cell)
      handles.append(self._count)
    return handles

  def wait(self, handles: Sequence[int], timeout: float) -> list[tuple[int, Outcome]]:
    return [(h, self._outcomes.pop(h)) for h in handles]
