"""lrjax's layers, and its import graph read from the source.

    python scripts/layers.py     # prints the layers with their modules, and any arrow up

Every import (also inside a function) of every module of lrjax/ and of the built-in configs is an
arrow; an arrow may only point to the same layer or a lower one, and modules may not import each
other in a circle (`tests/test_layers.py` holds this). The layers, from the bottom, are what
`LAYERS` says; a new package or top-level module must be placed there.
"""

from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# From the bottom up. The schedules (and their optax transformations and parameter groups) need
# nothing; the runtime chooses among the convolution
# kernels; models, data, optimizers and figures take what they are given; a config is checked
# once into typed objects (config), and the executors spread work without knowing the engine;
# the engine (train) builds on those; the range test and the user's own training function
# (which records its runs as the engine does) drive or stand beside the engine; the study
# (compare) plans cells and hands them to executors; the command line sits on top, and `lrjax`
# itself only re-exports names.
LAYERS = (
  (
    "lrjax.schedules",
    "lrjax.transforms",
    "lrjax.groups",
    "lrjax.import_path",
    "lrjax.files",
    "lrjax.configs",
    "lrjax.clock",
  ),
  ("lrjax.onednn", "lrjax.stats"),
  ("lrjax.runtime", "lrjax.models", "lrjax.data", "lrjax.plot", "lrjax.optimizers"),
  ("lrjax.config", "lrjax.executors"),
  ("lrjax.train",),
  ("lrjax.lr_finder", "lrjax.function"),
  ("lrjax.compare",),
  ("lrjax.cli", "lrjax.__main__"),
  ("lrjax",),
)


def modules() -> dict[str, str]:
  """Module name -> path, for lrjax/ and configs/ (installed as lrjax.configs)."""
  out = {}
  for folder, package in (("lrjax", "lrjax"), ("configs", "lrjax.configs")):
    for parent, _, files in os.walk(os.path.join(ROOT, folder)):
      for name in files:
        if not name.endswith(".py"):
          continue
        rel = os.path.relpath(os.path.join(parent, name), os.path.join(ROOT, folder))
        parts = [package, *rel[:-3].split(os.sep)]
        if parts[-1] == "__init__":
          parts.pop()
        out[".".join(parts)] = os.path.join(parent, name)
  return out


def imports(modules: dict[str, str]) -> dict[str, set[str]]:
  """Module -> the lrjax modules it imports (a name resolved to its longest module prefix)."""

  def resolve(name: str) -> str | None:
    while name and name not in modules:
      name = name.rpartition(".")[0]
    return name or None

  edges = {}
  for module, path in modules.items():
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
      names = []
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
          base = ".".join(up + ([base] if base else []))
        # `from a.b import c` reads module a.b.c where there is one, else a name of a.b.
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
      for name in names:
        if name.split(".")[0] == "lrjax" and (target := resolve(name)) and target != module:
          found.add(target)
    edges[module] = found
  return edges


def layer_of(module: str) -> int:
  for i, members in enumerate(LAYERS):
    if any(module == m or module.startswith(m + ".") for m in members if m != "lrjax"):
      return i
  if module == "lrjax":
    return len(LAYERS) - 1
  raise AssertionError(f"{module} is in no layer: place it in LAYERS")


def climbs(edges: dict[str, set[str]]) -> list[str]:
  """The arrows that point to a higher layer (a package's own __init__ re-exporting is fine)."""
  return sorted(
    f"{a} -> {b}"
    for a, targets in edges.items()
    for b in targets
    if layer_of(b) > layer_of(a) and not a.startswith(b + ".")
  )


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected groups of modules (ignoring a module's arrows to its own packages)."""
  graph = {a: {b for b in bs if not a.startswith(b + ".")} for a, bs in edges.items()}
  index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

  def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      group = []
      while True:
        w = stack.pop()
        on.discard(w)
        group.append(w)
        if w == v:
          break
      if len(group) > 1:
        out.append(sorted(group))

  for v in list(graph):
    if v not in index:
      visit(v)
  return out


def main() -> None:
  edges = imports(modules())
  for i in reversed(range(len(LAYERS))):
    names = sorted(m for m in edges if layer_of(m) == i)
    print(f"{i}: " + ", ".join(names))
  print("arrows up:", climbs(edges) or "none", "| circles:", circles(edges) or "none")


if __name__ == "__main__":
  main()
