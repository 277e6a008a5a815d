"""The install's promises: every import declared, `import lrjax` on the core alone, extras named."""

import ast
import os
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Import name -> distribution name, where they differ.
DISTRIBUTION = {
  "orbax": "orbax-checkpoint",
  "absl": "absl-py",
  "tensorflow_datasets": "tensorflow-datasets",
  "tensorboardX": "tensorboardX",
  "jaxlib": "jax",
}
# Where an import of lrjax/ may come from, by path prefix: the core, or the extra of that part.
EXTRA_OF_PATH = {
  "lrjax/train/": "train",
  "lrjax/models/": "train",
  "lrjax/data/": "train",
  "lrjax/compare/": "train",
  "lrjax/executors/": "train",
  "lrjax/runtime/": "train",
  "lrjax/files/": "train",
  "lrjax/lr_finder.py": "train",
  "lrjax/stats/": "train",
  "lrjax/config/": "train",
  "lrjax/optimizers.py": "train",
  "lrjax/plot/": "plot",
  "lrjax/cli/": "train",
  "configs/": "train",
}
# An import that names the extra when it is missing rather than failing: its module and extra.
OPTIONAL = {
  "tensorflow_datasets": "tfds",
  "importlib_resources": "tfds",
  "ray": "ray",
  "submitit": "slurm",
}


def _pyproject() -> dict:
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)


def _names(requirements: list[str]) -> set[str]:
  out = set()
  for req in requirements:
    name = req.split(";")[0].split("[")[0]
    for sep in "<>=!~ ":
      name = name.split(sep)[0]
    out.add(name.lower().replace("_", "-"))
  return out


def _third_party_imports() -> dict[str, set[str]]:
  """Top-level third-party module -> the files of lrjax/ that import it."""
  stdlib = set(sys.stdlib_module_names)
  found: dict[str, set[str]] = {}
  for folder, _, files in [
    *os.walk(os.path.join(ROOT, "lrjax")),
    *os.walk(os.path.join(ROOT, "configs")),
  ]:
    for name in files:
      if not name.endswith(".py"):
        continue
      path = os.path.join(folder, name)
      rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
      for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
          modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
          modules = [node.module]
        else:
          continue
        for module in modules:
          top = module.split(".")[0]
          if top not in stdlib and top not in ("lrjax", "__future__"):
            found.setdefault(top, set()).add(rel)
  return found


def test_every_import_is_declared_where_it_is_needed():
  project = _pyproject()["project"]
  core = _names(project["dependencies"])
  extras = {k: _names(v) for k, v in project["optional-dependencies"].items()}
  problems = []
  for module, files in sorted(_third_party_imports().items()):
    dist = DISTRIBUTION.get(module, module).lower().replace("_", "-")
    for rel in sorted(files):
      extra = OPTIONAL.get(module) or next(
        (e for prefix, e in EXTRA_OF_PATH.items() if rel.startswith(prefix)), None
      )
      allowed = core | (extras[extra] if extra else set())
      if dist not in allowed:
        problems.append(f"{rel} imports {module} ({dist}), not in core or [{extra}]")
  assert not problems, problems


def test_extras():
  extras = _pyproject()["project"]["optional-dependencies"]
  assert {"plot", "train", "tfds", "ray", "slurm", "onednn-cpu", "all", "test"} <= set(extras)
  assert "onednn" not in extras  # Intel's TBB/SYCL build: its thread count cannot be fixed
  # [train] brings the OpenMP oneDNN where its wheels exist (Linux x86-64).
  linux = "platform_system == 'Linux' and platform_machine == 'x86_64'"
  assert {r.split(";")[0].split(">=")[0] for r in extras["train"] if linux in r} == {
    "onednn-cpu-gomp",
    "onednn-devel-cpu-gomp",
  }
  assert _names(_pyproject()["project"]["dependencies"]) == {"jax", "optax", "numpy"}
  assert "importlib-resources" in _names(extras["tfds"])
  assert any(r.startswith("ruff==") for r in extras["test"])
  for extra in ("plot", "train", "tfds", "ray", "slurm"):
    assert extra in extras["all"][0]
  constraints = open(os.path.join(ROOT, ".ci", "constraints.txt")).read()
  ruff = next(r for r in extras["test"] if r.startswith("ruff=="))
  assert ruff in constraints.splitlines()


# Blocks the extras' packages, as in an environment where only jax, optax and numpy are installed.
_CORE_ONLY = """
import importlib.abc, sys
# (scipy and absl-py stay: jax and optax, the core, depend on them)
BLOCKED = {"flax", "matplotlib", "ml_collections", "orbax", "tensorflow_datasets", "tensorboardX"}
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path, target=None):
    if name.split(".")[0] in BLOCKED:
      raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
import jax, lrjax
for name, entry in lrjax.registry().items():
  schedule = entry.factory(**entry.example)
  jax.jit(lambda s, t: s(t))(schedule, jax.numpy.arange(5))
from lrjax import cli
for command in sys.argv[1:]:
  try:
    cli.main(["lrjax", command, "--help"])
  except SystemExit as e:
    print(command, e.code)
"""


def test_import_lrjax_needs_only_the_core_and_commands_name_their_extra():
  proc = subprocess.run(
    [sys.executable, "-c", _CORE_ONLY, "train", "compare", "find-lr", "plot"],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.split() == ["train", "1", "compare", "1", "find-lr", "1", "plot", "1"]
  for command, extra in [("train", "train"), ("find-lr", "train"), ("plot", "plot")]:
    assert f"lrjax {command} needs the [{extra}] extra: pip install 'lrjax[{extra}]'" in proc.stderr
  assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("path", [".ci/run", "scripts/check_core_install.py"])
def test_ci_checks_a_core_install(path):
  text = open(os.path.join(ROOT, path)).read()
  if path == ".ci/run":
    assert "pip install -q . -c .ci/constraints.txt" in text
    assert '-e ".[test,docs]" -c .ci/constraints.txt' in text
    assert "scripts/check_core_install.py" in text
  else:
    assert "inject_hyperparams" in text and "jax.vmap" in text and "jax.jit" in text


def test_every_package_is_installed():
  """pyproject lists its packages by hand (configs/ installs as lrjax.configs): a new package
  missing there would be absent from every installed lrjax."""
  import tomllib

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  with open(os.path.join(root, "pyproject.toml"), "rb") as f:
    listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
  found = {"lrjax.configs"}
  for parent, _, files in os.walk(os.path.join(root, "lrjax")):
    if "__init__.py" in files:
      found.add(os.path.relpath(parent, root).replace(os.sep, "."))
  assert listed == found
