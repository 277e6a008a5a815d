"""The README's Python examples run as printed."""

import os
import re
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import update_readme  # noqa: E402


def _block(name: str) -> str | None:
  """The text between the README's `<!-- BEGIN name -->` and `<!-- END name -->` lines."""
  text = open(os.path.join(ROOT, "README.md")).read()
  found = re.search(rf"<!-- BEGIN {name} -->\n(.*?)<!-- END {name} -->", text, re.S)
  return found.group(1) if found else None


def test_readme_python_blocks_run(tmp_path, monkeypatch):
  text = open(os.path.join(ROOT, "README.md")).read()
  blocks = re.findall(r"```python\n(.*?)```", text, re.S)
  assert len(blocks) >= 2
  monkeypatch.chdir(tmp_path)
  for i, block in enumerate(blocks):
    # Each block as a module of its own, as a script's or a notebook's code is one (a function
    # it defines can be named again by its module, as a study of your own function needs).
    module = types.ModuleType(f"readme_block_{i}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(block, "README.md", "exec"), module.__dict__)
  assert (tmp_path / "schedule.png").stat().st_size > 10_000


def test_readme_generated_blocks_are_filled():
  for name in (
    "schedule-table",
    "train-output",
    "study-results",
    "study-medium-results",
    "study-beyond-results",
    "study-budgets-results",
    "study-tuned-results",
    "study-tuned-budgets-results",
    "own-next-token-results",
    "own-fashion-mnist-results",
    "scaling",
    "benchmarks",
    *update_readme.BENCHMARK_BLOCKS,
  ):
    block = _block(name)
    assert block and block.strip(), f"README block {name} is empty"


@pytest.mark.parametrize("block, stem", sorted(update_readme.BENCHMARK_BLOCKS.items()))
def test_readme_benchmark_blocks_are_what_the_scripts_wrote(block, stem):
  # scripts/update_readme.py --bench copies them; a hand edit of the README would show here.
  body = _block(block)
  assert body == open(os.path.join(ROOT, "benchmarks", f"{stem}.md")).read().rstrip("\n") + "\n"


def test_readme_schedule_table_is_current(capsys):
  import schedule_table

  schedule_table.main()
  table = capsys.readouterr().out.strip()
  assert _block("schedule-table").strip() == table, "run scripts/update_readme.py"
