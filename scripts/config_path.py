"""The path of `lrjax compare`'s config through the code, traced: stops, files, climbs back up.

    python scripts/config_path.py [workdir]      # runs `lrjax compare --config study_smoke`

Runs the smoke study in this process under a profiler and records every call of a function of
lrjax whose arguments hold a config: an `ml_collections.ConfigDict` (what a config file gives),
or one of the typed objects it is checked into (`Experiment`, `Study`), where they exist. A
*stop* is such a function; a *climb back up* is a call into one of them from a module of a lower
layer (`scripts/layers.py`), the nearest lrjax frame being the caller. Prints the
counts and the climbs. For an older checkout, put it first on PYTHONPATH: its modules are
placed by the same layers (`OLD_NAMES` maps the modules that moved).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from layers import layer_of  # noqa: E402

# Modules of the layout before the runtime, files and range test had packages of their own.
OLD_NAMES = {
  "lrjax.cli_study": "lrjax.cli",
  "lrjax.compare.stats": "lrjax.stats",
  "lrjax.train.lr_finder": "lrjax.lr_finder",
  "lrjax.train.xla_cpu": "lrjax.runtime",
  "lrjax.train.devices": "lrjax.runtime",
  "lrjax.train.jax_compat": "lrjax.runtime",
  "lrjax.train.preemption": "lrjax.runtime",
  "lrjax.train.claim": "lrjax.files",
}


def layer(module: str) -> int:
  for old, new in OLD_NAMES.items():
    if module == old or module.startswith(old + "."):
      return layer_of(new)
  return layer_of(module)


def trace(workdir: str) -> dict:
  import ml_collections

  kinds: tuple[type, ...] = (ml_collections.ConfigDict,)
  try:
    from lrjax.config.experiment import Experiment
    from lrjax.config.study import Study

    kinds += (Experiment, Study)
  except ImportError:  # a checkout from before the typed config
    pass
  stops: dict[str, str] = {}
  climbs: set[tuple[str, str]] = set()
  all_climbs: set[tuple[str, str]] = set()

  def name_of(frame) -> str:
    return f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_qualname}"

  def profile(frame, event, arg):
    if event != "call" or not frame.f_globals.get("__name__", "").startswith("lrjax"):
      return
    code = frame.f_code
    back = frame.f_back
    while back is not None and not back.f_globals.get("__name__", "").startswith("lrjax"):
      back = back.f_back
    up = back is not None and layer(frame.f_globals["__name__"]) > layer(back.f_globals["__name__"])
    if up:
      all_climbs.add((name_of(back), name_of(frame)))
    args = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    if not any(isinstance(frame.f_locals.get(a), kinds) for a in args):
      return
    here = name_of(frame)
    stops[here] = code.co_filename
    if up:
      climbs.add((name_of(back), here))

  sys.argv = ["lrjax", "compare", "--config", "study_smoke", "--workdir", workdir]
  sys.setprofile(profile)
  try:
    runpy.run_module("lrjax", run_name="__main__")
  except SystemExit as e:
    if e.code not in (0, None):
      raise
  finally:
    sys.setprofile(None)
  return {
    "parsed_in": sorted(n for n in stops if n.startswith("lrjax.config.")),
    "stops": len(stops),
    "files": len(set(stops.values())),
    "climbs": len(climbs),
    "climbs_list": sorted(f"{a} -> {b}" for a, b in climbs),
    "all_climbs": sorted(f"{a} -> {b}" for a, b in all_climbs),
  }


if __name__ == "__main__":
  with tempfile.TemporaryDirectory() as tmp:
    result = trace(sys.argv[1] if len(sys.argv) > 1 else os.path.join(tmp, "study"))
  print(json.dumps(result, indent=2), file=sys.__stdout__)
