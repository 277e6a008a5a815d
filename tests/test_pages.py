"""The README and the documentation pages: their Python runs as printed, and their generated
blocks are what the scripts produced."""

import os
import re
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import update_docs  # noqa: E402

PAGES = update_docs.pages()
README_MAX_LINES = 300


def _name(path: str) -> str:
  return os.path.relpath(path, ROOT)


def _python_blocks(path: str) -> list[str]:
  return re.findall(r"```python\n(.*?)```", open(path, encoding="utf-8").read(), re.S)


# getting_started.md's blocks are run by tests/test_docs.py.
RUNNABLE = [p for p in PAGES if _python_blocks(p) and not p.endswith("getting_started.md")]


@pytest.mark.parametrize("path", RUNNABLE, ids=_name)
def test_python_blocks_run(path, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  for i, code in enumerate(_python_blocks(path)):
    # Each block as a module of its own, as a script's or a notebook's code is one (a function
    # it defines can be named again by its module, as a study of your own function needs).
    module = types.ModuleType(f"page_block_{i}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, _name(path), "exec"), module.__dict__)


def test_the_readme_quickstart_draws_its_figure(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  code = _python_blocks(os.path.join(ROOT, "README.md"))[0]
  exec(compile(code, "README.md", "exec"), {})
  assert (tmp_path / "schedule.png").stat().st_size > 10_000


def test_the_readme_is_a_front_page():
  text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
  assert len(text.splitlines()) <= README_MAX_LINES
  # Every page it links to exists, and every guide and results page is linked from it.
  linked = {os.path.normpath(m) for m in re.findall(r"\]\((docs/[^)#\s]+\.md)", text)}
  for page in linked:
    assert os.path.isfile(os.path.join(ROOT, page)), page
  for page in [*glob_md("guides"), "docs/results/index.md", "docs/api/index.md"]:
    assert page in linked, f"README.md does not link {page}"
  index = open(os.path.join(ROOT, "docs", "results", "index.md"), encoding="utf-8").read()
  for page in glob_md("results"):
    assert page.endswith("index.md") or f"]({os.path.basename(page)})" in index, page


def glob_md(folder: str) -> list[str]:
  return sorted(
    os.path.join("docs", folder, f) for f in os.listdir(os.path.join(ROOT, "docs", folder))
  )


KNOWN = {
  "schedule-table",
  "train-output",
  "scaling",
  "benchmarks",
  "front-results",
  *update_docs.BENCHMARK_BLOCKS,
  *(name for name, _, _ in update_docs.STUDY_BLOCKS.values()),
}


def test_generated_blocks_are_filled_and_each_in_one_file():
  for name in sorted(KNOWN):
    assert update_docs.block(name).strip(), f"block {name} is empty"


def test_every_block_a_page_holds_is_known():
  for path in PAGES:
    for name in re.findall(r"<!-- BEGIN ([\w-]+) -->", open(path, encoding="utf-8").read()):
      assert name in KNOWN, (_name(path), name)


def test_the_front_page_evidence_is_the_tuned_study_s():
  tuned = update_docs.block("study-tuned-results")
  assert update_docs.block("front-results") == update_docs.front(tuned)


# A sentence that ranks, ties or judges arms: one of these words beside an arm's name.
_COMPARES = re.compile(
  r"\b(better|worse|best|highest|lowest|ahead|behind|trails?|ties?|tied|level with|above|below|"
  r"beats?|outperforms?|ranks?|ranking|leads?|second|recommends?|recommended|significant(ly)?|"
  r"undecided|equivalent|wins?)\b",
  re.I,
)
_ARMS = re.compile(
  r"\b(constant|time-based|drop-based|linear|polynomial|triangle|cosine|WSD|schedule-free|"
  r"Prodigy|DoG)\b",
  re.I,
)


def _prose(text: str) -> str:
  """A page without its generated blocks, code blocks and figure lines."""
  text = re.sub(r"<!-- BEGIN ([\w-]+) -->.*?<!-- END \1 -->", "", text, flags=re.S)
  text = re.sub(r"```.*?```", "", text, flags=re.S)
  text = re.sub(r"\]\([^)]*\)", "]", text)  # a link's target is an address, not words
  return "\n".join(ln for ln in text.splitlines() if not ln.startswith(("![", "|", "#")))


def _sentences(text: str) -> list[str]:
  items = re.split(r"\n\s*[-*] ", text)  # a list item starts a sentence
  flat = [re.sub(r"\s+", " ", item) for item in items]
  return [s.strip() for f in flat for s in re.split(r"(?<=[.!?:;])\s+(?=[A-Z*(])", f) if s.strip()]


def test_comparative_sentences_come_from_generated_blocks():
  # What ranks, ties or judges arms on the results pages and in the README's evidence comes
  # from a study's report (its verdicts), copied by scripts/update_docs.py, never typed.
  readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
  evidence = readme.split("## What the evidence says", 1)[1].split("\n## ", 1)[0]
  texts = {"README.md": evidence}
  for page in glob_md("results"):
    texts[page] = open(os.path.join(ROOT, page), encoding="utf-8").read()
  typed = [
    (page, sentence)
    for page, text in texts.items()
    for sentence in _sentences(_prose(text))
    if _COMPARES.search(sentence) and _ARMS.search(sentence)
  ]
  assert not typed, "\n".join(f"{page}: {sentence}" for page, sentence in typed)


def test_the_comparative_sentence_finder_finds_them():
  page = (
    "Setup.\n<!-- BEGIN x -->\nTriangle is better.\n<!-- END x -->\nCosine ends ahead of WSD.\n"
    "- Linear decay, [the best](guide.md#best-rate) page.\n- The [guide](a.md#best-rate) on WSD."
  )
  found = [s for s in _sentences(_prose(page)) if _COMPARES.search(s) and _ARMS.search(s)]
  assert found == ["Cosine ends ahead of WSD.", "Linear decay, [the best] page."]


@pytest.mark.parametrize("name", sorted(update_docs.STUDY_BLOCKS))
def test_study_results_say_when_and_with_what_they_ran(name):
  body = update_docs.block(update_docs.STUDY_BLOCKS[name][0])
  written = r"\*Report written \d{4}-\d\d-\d\d \d\d:\d\d UTC on \w+, with (lrjax \S+, )?jax "
  assert re.match(written, body), body[:200]


@pytest.mark.parametrize("block, stem", sorted(update_docs.BENCHMARK_BLOCKS.items()))
def test_benchmark_blocks_are_what_the_scripts_wrote(block, stem):
  # scripts/update_docs.py --bench copies them; a hand edit of a page would show here.
  body = update_docs.block(block)
  assert body == open(os.path.join(ROOT, "benchmarks", f"{stem}.md")).read().rstrip("\n") + "\n"


def test_schedule_table_is_current(capsys):
  import schedule_table

  schedule_table.main()
  table = capsys.readouterr().out.strip()
  assert update_docs.block("schedule-table").strip() == table, "run scripts/update_docs.py"


def test_figures_the_pages_show_exist():
  for path in PAGES:
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", open(path, encoding="utf-8").read()):
      if not target.startswith("http"):
        assert os.path.isfile(os.path.join(os.path.dirname(path), target)), (_name(path), target)
