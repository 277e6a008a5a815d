"""What every reference module shares: where the values go and how they are written."""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "peers"


def versions(*packages: str) -> dict[str, str]:
  """The installed version of each peer package (the record says what produced it)."""
  out = {"python": platform.python_version()}
  for name in packages:
    out[name] = importlib.metadata.version(name)
  return out


def write(name: str, packages: tuple[str, ...], cases: list[dict[str, Any]]) -> Path:
  """Writes `{"versions": ..., "cases": cases}` to `tests/data/peers/<name>.json`.

  Each case is a dict with at least "id" (unique within the file), "settings" (the peer's
  arguments) and "values" (a list of floats, one per step from 0, or whatever the module's
  test reads); floats are written with repr precision.
  """
  ids = [c["id"] for c in cases]
  if len(set(ids)) != len(ids):
    raise ValueError(f"case ids repeat in {name}: {ids}")
  OUT_DIR.mkdir(parents=True, exist_ok=True)
  path = OUT_DIR / f"{name}.json"
  record = {"module": f"scripts/peers/{name}.py", "versions": versions(*packages), "cases": cases}
  path.write_text(json.dumps(record, indent=1) + "\n")
  print(f"wrote {len(cases)} cases to {path}")
  return path


def read(name: str) -> dict[str, Any]:
  """The recorded file of module `name` (the tests' reader)."""
  return json.loads((OUT_DIR / f"{name}.json").read_text())


def timm_scheduler():
  """`timm.scheduler`, imported without `timm/__init__` (which needs torchvision's compiled ops).

  The schedulers themselves need torch only; a CPU-only torch beside a torchvision built for
  another torch fails at `import timm`.
  """
  import importlib
  import importlib.util
  import sys
  import types

  if "timm" not in sys.modules:
    spec = importlib.util.find_spec("timm")
    shim = types.ModuleType("timm")
    shim.__path__ = list(spec.submodule_search_locations)
    shim.__spec__ = spec
    sys.modules["timm"] = shim
  return importlib.import_module("timm.scheduler")
