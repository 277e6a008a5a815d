"""The documentation builds with warnings as errors, and its pages keep up with the code."""

import dataclasses
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import types

import pytest

import lrjax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")

# What the README, the configs and the examples tell users to call: public, whatever else is.
TOLD_TO_CALL = (
  "lrjax.from_config",
  "lrjax.plot_schedules",
  "lrjax.config.load",
  "lrjax.stats.paired_comparison",
  "lrjax.lr_finder.find_lr",
  "lrjax.train.train_and_evaluate",
  "lrjax.train.Trainer",
  "lrjax.compare.api.function_study",
  "lrjax.compare.runner.compare",
  "lrjax.function.TrainJob",
  "lrjax.models.registry.create_model",
  "lrjax.data.datasets.load_dataset",
  "lrjax.data.validation.hold_out_indices",
  "lrjax.plot.study.write_figures",
)


def _public_api() -> types.ModuleType:
  """docs/_ext/public_api.py: what is public (docs/api/index.md), read from the code alone."""
  path = os.path.join(DOCS, "_ext", "public_api.py")
  spec = importlib.util.spec_from_file_location("lrjax_docs_public_api", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _needs_docs_extra():
  for module in ("sphinx", "myst_parser", "furo"):
    pytest.importorskip(module, reason=f'{module} is missing: pip install -e ".[docs]"')


@pytest.fixture(scope="module")
def html(tmp_path_factory):
  _needs_docs_extra()
  out = tmp_path_factory.mktemp("html")
  # A process of its own: Sphinx imports every documented module and draws the schedule figures,
  # which this test process's JAX settings (tests/conftest.py) must not change.
  proc = subprocess.run(
    [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", DOCS, str(out)],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  assert proc.returncode == 0, proc.stderr[-5000:]
  return out


@pytest.mark.slow
def test_docs_build_without_warnings(html):
  for page in ("index", "getting_started", "schedules", "api/index", "api/lrjax", "api/train"):
    assert (html / f"{page}.html").is_file(), page


@pytest.mark.slow
def test_api_page_lists_every_public_name(html):
  page = (html / "api" / "lrjax.html").read_text(encoding="utf-8")
  # Each name is documented on the page (id="lrjax.NAME") or links to where it is (#lrjax.NAME).
  missing = [name for name in lrjax.__all__ if f'lrjax.{name}"' not in page]
  assert not missing, missing


@pytest.mark.slow
def test_every_registered_schedule_has_its_figure(html):
  page = (html / "schedules.html").read_text(encoding="utf-8")
  for name in lrjax.registry():
    assert f'id="lrjax.{name}"' in page, name
    assert (html / "_images" / f"{name}.png").stat().st_size > 5_000, name


@pytest.mark.slow
def test_getting_started_python_blocks_run(tmp_path, monkeypatch):
  text = open(os.path.join(DOCS, "getting_started.md"), encoding="utf-8").read()
  blocks = re.findall(r"```python\n(.*?)```", text, re.S)
  assert len(blocks) >= 2
  monkeypatch.chdir(tmp_path)
  for i, block in enumerate(blocks):
    module = types.ModuleType(f"docs_block_{i}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(block, "docs/getting_started.md", "exec"), module.__dict__)
  assert (tmp_path / "schedule.png").stat().st_size > 10_000


def test_public_names_hold_what_users_are_told_to_call():
  names = _public_api().public_names()
  assert set(names) == {
    "lrjax",
    "lrjax.train",
    "lrjax.compare",
    "lrjax.function",
    "lrjax.models",
    "lrjax.data",
    "lrjax.plot",
  }
  every = {name for package in names.values() for name in package}
  missing = [n for n in TOLD_TO_CALL if n not in every]
  assert not missing, missing
  assert {f"lrjax.{n}" for n in [*lrjax.registry(), *lrjax.__all__]} <= set(names["lrjax"])
  # A class's own methods count: TrainJob.stop is part of the training function's contract.
  assert "lrjax.function.TrainJob.stop" in every
  assert all(names.values()), {k: len(v) for k, v in names.items()}


def test_every_public_name_has_a_docstring_naming_its_arguments():
  problems = _public_api().docstring_problems()
  assert not problems, "\n".join(problems)


def test_docstring_rules_read_google_style_sections():
  api = _public_api()
  doc = inspect.cleandoc(
    """Does a thing.

    Args:
      x: the first; a long text
        that goes on: with a colon.
      *rest: more.
      **changes (dict): by name.

    Returns:
      The result, without a type.
    """
  )
  assert api.documented_arguments(doc) == {"x", "rest", "changes"}
  assert not api.typed_returns(doc)
  assert api.typed_returns("Returns:\n  The config, locked: no field can be added.")
  assert not api.typed_returns("Returns:\n  A ``{'a': 1}`` dict, see :func:`lrjax.to_config`.")

  def undocumented(a, b):
    """Mentions a and b, but not under Args."""

  @dataclasses.dataclass
  class Plain:
    a: int

  assert api.own_docstring(Plain) == ""  # the dataclass's generated one is none
  assert api.arguments(undocumented) == ["a", "b"]
  assert api.documented_arguments(api.own_docstring(undocumented)) == set()


@pytest.mark.slow
def test_every_public_name_has_an_entry_on_the_pages(html):
  ids = set()
  for page in html.rglob("*.html"):
    ids |= set(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))
  names = _public_api().public_names()
  missing = {p: [n for n in package if n not in ids] for p, package in names.items()}
  assert not any(missing.values()), missing


# A tag that makes the reader's browser fetch something: a script, a style sheet, a font, a frame.
_ASSET = re.compile(r"<(script|link|img|iframe|source)\b[^>]*>", re.I | re.S)
_EXTERNAL = re.compile(r"""\b(src|href)\s*=\s*["']?\s*(https?:)?//""", re.I)


@pytest.mark.slow
def test_the_site_loads_nothing_from_the_network(html):
  found = []
  for page in html.rglob("*.html"):
    for tag in _ASSET.finditer(page.read_text(encoding="utf-8")):
      # A link to a page elsewhere (<a>, or <link rel="canonical">) loads nothing.
      if _EXTERNAL.search(tag[0]) and not re.search(r"rel=\S*canonical", tag[0]):
        found.append(f"{page.relative_to(html)}: {tag[0]}")
  for sheet in html.rglob("*.css"):
    text = sheet.read_text(encoding="utf-8", errors="replace")
    urls = re.findall(r"url\(\s*['\"]?https?:[^)]*", text)
    found += [f"{sheet.relative_to(html)}: {u}" for u in urls]
  assert not found, found[:10]


@pytest.mark.slow
def test_formulas_are_typeset_by_the_mathjax_inside_the_site(html):
  page = (html / "schedules.html").read_text(encoding="utf-8")
  scripts = re.findall(r'<script\b[^>]*\bsrc="([^"]*mathjax[^"]*)"', page)
  assert scripts and all(s.startswith("_static/mathjax/") for s in scripts), scripts
  mathjax = html / "_static" / "mathjax"
  assert (mathjax / scripts[0].split("?")[0].removeprefix("_static/mathjax/")).stat().st_size > 1e5
  # MathJax loads its fonts and extensions from beside its script.
  assert list((mathjax / "output" / "chtml" / "fonts").rglob("*.woff"))


@pytest.mark.slow
def test_every_schedule_entry_shows_its_formula(html):
  page = (html / "schedules.html").read_text(encoding="utf-8")
  starts = {n: page.index(f'id="lrjax.{n}"') for n in [*lrjax.registry(), "reduce_on_plateau"]}
  ends = sorted(starts.values()) + [len(page)]
  for name, start in starts.items():
    entry = page[start : ends[ends.index(start) + 1]]
    assert 'class="math notranslate nohighlight"' in entry, name
    if ".. math::" in getattr(lrjax, name).__doc__:
      assert '<div class="math notranslate nohighlight">' in entry, name
    assert ":math:" not in entry and ".. math::" not in entry, name  # nothing left untypeset
