"""Rules the code keeps: small files, no private names across modules, a base without
combinators, one owner of a run's files, an executor interface apart from the engine.

A module may use its own private names (and a test those of the module it tests); the schedules'
base may import only `steps`.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sources(folder: str = "lrjax") -> dict[str, str]:
  out = {}
  for parent, _, files in os.walk(os.path.join(ROOT, folder)):
    for name in sorted(files):
      if name.endswith(".py"):
        path = os.path.join(parent, name)
        out[os.path.relpath(path, ROOT)] = open(path, encoding="utf-8").read()
  return out


def test_no_file_is_over_400_lines():
  long = {p: n for p, s in _sources().items() if (n := len(s.splitlines())) > 400}
  assert not long, long


def private_uses(source: str, first_party: frozenset = frozenset({"lrjax"})) -> list[str]:
  """`from x import _name` and `module._name` where `module` is a first-party import."""
  tree, found, aliases = ast.parse(source), [], set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in first_party:
      for alias in node.names:
        if alias.name.startswith("_"):
          found.append(f"from {node.module} import {alias.name}")
        aliases.add(alias.asname or alias.name)
    elif isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.split(".")[0] in first_party:
          aliases.add(alias.asname or alias.name.split(".")[0])
  for node in ast.walk(tree):
    if (
      isinstance(node, ast.Attribute)
      and isinstance(node.value, ast.Name)
      and node.value.id in aliases
      and node.attr.startswith("_")
      and not node.attr.startswith("__")
    ):
      found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
  return found


@pytest.mark.parametrize("folder", ["lrjax", "benchmarks", "scripts"])
def test_no_module_uses_a_private_name_of_another(folder):
  sources = _sources(folder)
  # The benchmarks and scripts import their neighbours by file name.
  siblings = {os.path.basename(p)[:-3] for p in sources} if folder != "lrjax" else set()
  first_party = frozenset({"lrjax", *siblings})
  found = {p: u for p, s in sources.items() if (u := private_uses(s, first_party))}
  assert not found, found


@pytest.mark.parametrize(
  "source, expected",
  [
    ("from lrjax.cli import _run\n", ["from lrjax.cli import _run"]),
    ("from lrjax.train import loop\nloop._absorb([], {}, {})\n", ["loop._absorb (line 2)"]),
    ("import lrjax\nlrjax._x\n", ["lrjax._x (line 2)"]),
    ("from lrjax.train import loop\nloop.train\nself._x\n", []),
    ("from numpy import _x\nimport os\nos._exit\n", []),  # not first-party
  ],
)
def test_private_uses_finds_what_it_should(source, expected):
  assert private_uses(source) == expected


def test_private_uses_takes_neighbours_as_first_party():
  source = "from training import _config\nimport timing\ntiming._median\n"
  found = private_uses(source, frozenset({"lrjax", "training", "timing"}))
  assert found == ["from training import _config", "timing._median (line 3)"]


def test_the_schedule_base_knows_nothing_of_combinators_or_the_registry():
  tree = ast.parse(_sources()[os.path.join("lrjax", "schedules", "base.py")])
  imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
  assert {m for m in imported if m.startswith("lrjax")} <= {"lrjax.schedules.steps"}, imported


@pytest.mark.parametrize(
  "name", ["summary.json", "config.json", "metrics.jsonl", "failed.json", "skipped.json"]
)
def test_one_module_owns_a_run_s_files(name):
  """Only `lrjax.files.run_dir` names the files of a run's folder: the engine, the user's
  training function and the study read and write them through it."""
  owners = {p for p, s in _sources().items() if f'"{name}"' in s or f"'{name}'" in s}
  assert owners == {os.path.join("lrjax", "files", "run_dir.py")}, owners


def test_the_executor_interface_imports_no_part_of_the_engine():
  import subprocess
  import sys

  code = (
    "import sys\n"
    "import lrjax.executors.base, lrjax.executors.process, lrjax.executors.local\n"
    "print(sorted({m.split('.')[0] for m in sys.modules} & {'orbax', 'tensorstore', 'flax'}),"
    " sorted(m for m in sys.modules if m.startswith('lrjax.train')))\n"
  )
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip() == "[] []"
