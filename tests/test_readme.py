"""The README's Python examples run as printed."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_python_blocks_run(tmp_path, monkeypatch):
  text = open(os.path.join(ROOT, "README.md")).read()
  blocks = re.findall(r"```python\n(.*?)```", text, re.S)
  assert len(blocks) >= 2
  monkeypatch.chdir(tmp_path)
  for block in blocks:
    exec(compile(block, "README.md", "exec"), {})
  assert (tmp_path / "schedule.png").stat().st_size > 10_000


def test_readme_generated_blocks_are_filled():
  text = open(os.path.join(ROOT, "README.md")).read()
  for name in (
    "schedule-table",
    "train-output",
    "study-results",
    "study-medium-results",
    "study-beyond-results",
    "study-budgets-results",
    "scaling",
    "benchmarks",
    "conv-variants",
    "onednn",
    "onednn-accuracy",
  ):
    block = re.search(rf"<!-- BEGIN {name} -->\n(.*?)<!-- END {name} -->", text, re.S)
    assert block and block.group(1).strip(), f"README block {name} is empty"


@pytest.mark.parametrize(
  "block, stem",
  [
    ("conv-variants", "conv_variants"),
    ("onednn", "onednn_layers"),
    ("onednn-accuracy", "onednn_accuracy"),
  ],
)
def test_readme_benchmark_blocks_are_what_the_scripts_wrote(block, stem):
  # scripts/update_readme.py --bench copies them; a hand edit of the README would show here.
  text = open(os.path.join(ROOT, "README.md")).read()
  body = re.search(rf"<!-- BEGIN {block} -->\n(.*?)<!-- END {block} -->", text, re.S).group(1)
  assert body == open(os.path.join(ROOT, "benchmarks", f"{stem}.md")).read().rstrip("\n") + "\n"


def test_readme_schedule_table_is_current(capsys):
  import sys

  sys.path.insert(0, os.path.join(ROOT, "scripts"))
  import schedule_table

  schedule_table.main()
  table = capsys.readouterr().out.strip()
  text = open(os.path.join(ROOT, "README.md")).read()
  block = re.search(r"<!-- BEGIN schedule-table -->\n(.*?)<!-- END schedule-table -->", text, re.S)
  assert block.group(1).strip() == table, "run scripts/update_readme.py"
