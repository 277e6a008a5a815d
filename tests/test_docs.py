"""The documentation builds with warnings as errors, and its pages keep up with the code."""

import os
import re
import subprocess
import sys
import types

import pytest

import lrjax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


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
