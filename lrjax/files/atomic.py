"""Files that readers trust: every one written atomically.

A temporary file in the same folder, flushed and synced, then renamed over the old one: a crash
or a kill leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np


def jsonable(x: Any) -> Any:
  """`x` with NumPy scalars and arrays (also inside dicts, lists and tuples) as plain values."""
  if isinstance(x, dict):
    return {k: jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [jsonable(v) for v in x]
  if isinstance(x, (np.generic, np.ndarray)):
    return x.tolist()
  return x


def write_atomic(path: str, text: str) -> None:
  """Replaces `path` with `text` in one step (POSIX rename)."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def write_json(path: str, value: Any) -> None:
  write_atomic(path, json.dumps(jsonable(value), indent=2))


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)
