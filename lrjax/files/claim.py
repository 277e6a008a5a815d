"""Claims on a folder, so that many processes can share one workdir and never train the same run.

A process claims a run's folder before training it by creating `claim.json` there with
`O_CREAT | O_EXCL` (atomic on POSIX local and NFSv3+ filesystems): it holds the owner's host and
pid and a lease that a background thread renews every `lease / 3` seconds. Another process finds
the claim and skips the run (a study) or stops (`lrjax train`). A claim whose lease has expired,
because its owner died without releasing it (or, on the same host, whose process is gone), is
taken over: renamed to a name unique to the new
owner (only one rename of a file can succeed), then claimed afresh.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

from lrjax.files.atomic import write_atomic

FILE = "claim.json"
LEASE_SECONDS = 60.0


class ClaimedError(RuntimeError):
  """The folder is claimed by a live process.

  Args:
    folder: the folder (kept as `self.folder`).
    holder: its owner, "host pid N" (kept as `self.holder`).
    path: the claim's file.
  """

  def __init__(self, folder: str, holder: str, path: str):
    super().__init__(
      f"{folder} is being trained by {holder} (its claim is in {path}); wait for it to "
      "finish, or delete the claim file if that process is gone"
    )
    self.folder, self.holder, self.path = folder, holder, path

  @property
  def reason(self) -> str:
    """Who holds the folder, in a few words."""
    return f"{self.folder} is being trained by {self.holder}"

  def __reduce__(self):
    return (ClaimedError, (self.folder, self.holder, self.path))


def _owner() -> dict:
  return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(held: dict) -> bool:
  """False only for an owner on this host whose process is gone (SIGKILL, a crash): its claim
  is taken over at once instead of when its lease expires."""
  if held.get("host") != socket.gethostname() or not isinstance(held.get("pid"), int):
    return True
  try:
    os.kill(held["pid"], 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's live process
    return True
  return True


def _read(path: str) -> dict | None:
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError):  # being written right now: treat as held
    return {"expires": time.time() + 1.0}


class Claim:
  """`with Claim(folder):` holds the folder while the block runs; raises ClaimedError if held."""

  # A claim taken by one process of a multi-process (`jax.distributed`) run would stop the
  # others, which train the same run: there the launcher coordinates and lrjax does not claim.

  def __init__(self, folder: str, lease: float = LEASE_SECONDS):
    if not lease > 0:
      raise ValueError(f"lease must be a positive number of seconds, got {lease!r}")
    self.folder, self.lease = folder, lease
    self.path = os.path.join(folder, FILE)
    self._stop, self._thread = threading.Event(), None

  def _record(self) -> str:
    return json.dumps({**_owner(), "expires": time.time() + self.lease})

  def try_acquire(self) -> bool:
    """Claims the folder if it is free or its claim has expired; False if a live owner holds it."""
    os.makedirs(self.folder, exist_ok=True)
    for _ in range(3):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        held = _read(self.path)
        if held is not None and held.get("expires", 0) > time.time() and _alive(held):
          return False
        stale = f"{self.path}.expired-{socket.gethostname()}-{os.getpid()}"
        try:
          os.rename(self.path, stale)  # of several takers, one rename wins
          os.remove(stale)
        except FileNotFoundError:
          pass
        continue
      with os.fdopen(fd, "w") as f:
        f.write(self._record())
      self._start_renewing()
      return True
    return False

  def holder(self) -> str:
    held = _read(self.path) or {}
    return f"{held.get('host', '?')} pid {held.get('pid', '?')}"

  def _start_renewing(self) -> None:
    self._stop.clear()
    self._thread = threading.Thread(target=self._renew, name="lrjax-claim", daemon=True)
    self._thread.start()

  def _ours(self) -> bool:
    held = _read(self.path)
    return held is not None and (held.get("host"), held.get("pid")) == tuple(_owner().values())

  def _renew(self) -> None:
    while not self._stop.wait(self.lease / 3):
      if not self._ours():  # taken over while this process was stalled: not ours to renew
        return
      write_atomic(self.path, self._record())

  def release(self) -> None:
    if self._thread is None:
      return
    self._stop.set()
    self._thread.join()
    self._thread = None
    if self._ours():
      os.remove(self.path)

  def __enter__(self) -> Claim:
    if not self.try_acquire():
      raise ClaimedError(self.folder, self.holder(), self.path)
    return self

  def __exit__(self, *exc) -> None:
    self.release()
