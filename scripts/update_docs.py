"""Rewrites the generated blocks of the README and the documentation pages from the code's output.

    python scripts/update_docs.py --train-out runs/fmnist.out --study runs/study_fmnist

A block sits between `<!-- BEGIN name -->` and `<!-- END name -->` in README.md or in one page
under docs/ (each name in exactly one file):
- `schedule-table`: scripts/schedule_table.py's table of every registered schedule;
- `train-output`: the JSON summary `lrjax train` printed (--train-out, a captured stdout);
- the studies' results pages (`STUDY_BLOCKS`): a study's results.md under a line saying when and
  with which versions and runtime it ran, its figures copied to docs/<folder>/ (--study,
  --study-medium, ... each a workdir);
- `front-results`: the README's evidence, the first table of the tuned study's report with its
  caption and its Recommendation paragraph (with --study-tuned);
- `benchmarks`: benchmarks/results.md as `python benchmarks/run.py` last wrote it (--bench), and
  with it `BENCHMARK_BLOCKS`: the .md files the other benchmark scripts last wrote.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import glob
import io
import json
import os
import re
import shutil

from lrjax.runtime.threads import counted

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
# Block -> the benchmarks/<stem>.md its script writes (copied with --bench).
BENCHMARK_BLOCKS = {
  "conv-variants": "conv_variants",
  "onednn": "onednn_layers",
  "onednn-accuracy": "onednn_accuracy",
  "onednn-builds": "onednn_builds",
  "tuning-grid": "tuning_grid",
  "local-workers": "local_workers",
  "tuning-runs": "tuning_runs",
  "compile-cache": "compile_cache",
}
# Command-line option -> (block, docs/<folder> its figures are copied to, the command it reads).
STUDY_BLOCKS = {
  "study": ("study-results", "study_fashion_mnist", "lrjax compare --config study_fashion_mnist"),
  "study_medium": (
    "study-medium-results",
    "study_fashion_mnist_medium",
    "the same study's :medium variant",
  ),
  "study_beyond": ("study-beyond-results", "study_fashion_mnist_beyond", "its :beyond variant"),
  "study_budgets": ("study-budgets-results", "study_fashion_mnist_budgets", "its :budgets variant"),
  "study_tuned": ("study-tuned-results", "study_fashion_mnist_tuned", "its :tuned variant"),
  "study_tuned_budgets": (
    "study-tuned-budgets-results",
    "study_fashion_mnist_tuned_budgets",
    "its :tuned_budgets variant",
  ),
  "own_next_token": ("own-next-token-results", "own_next_token", "python examples/next_token.py"),
  "own_fashion_mnist": (
    "own-fashion-mnist-results",
    "own_fashion_mnist_nnx",
    "python examples/fashion_mnist_nnx.py",
  ),
}


def pages() -> list[str]:
  """README.md and every Markdown page of the documentation, as paths."""
  found = glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True)
  skip = (os.path.join(DOCS, "_build"), os.path.join(DOCS, "_generated"))
  return [os.path.join(ROOT, "README.md")] + sorted(p for p in found if not p.startswith(skip))


def _pattern(name: str) -> re.Pattern:
  return re.compile(rf"(<!-- BEGIN {name} -->\n)(.*?)(<!-- END {name} -->)", re.S)


def page_of(name: str) -> str:
  """The one file that holds block `name`."""
  holders = [p for p in pages() if _pattern(name).search(open(p, encoding="utf-8").read())]
  if len(holders) != 1:
    raise SystemExit(f"block {name!r} is in {len(holders)} files (one expected): {holders}")
  return holders[0]


def block(name: str) -> str:
  """The text of block `name`, wherever it is."""
  return _pattern(name).search(open(page_of(name), encoding="utf-8").read()).group(2)


def replace_block(name: str, body: str) -> None:
  path = page_of(name)
  text = open(path, encoding="utf-8").read()
  text = _pattern(name).sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(3), text)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)


def provenance(workdir: str) -> str:
  """When the study's report was written, and the versions and runtime its runs recorded."""
  results = json.load(open(os.path.join(workdir, "results.json")))
  if "written" in results:
    when = datetime.datetime.strptime(results["written"], "%Y-%m-%dT%H:%M:%SZ")
  else:  # a report written before results.json said when
    when = datetime.datetime.fromtimestamp(
      os.path.getmtime(os.path.join(workdir, "results.md")), datetime.UTC
    )
  env = results.get("environment", {})
  versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v)
  runtime = results.get("config", {}).get("runtime") or {}
  parts = [f"convolutions {runtime['convolutions']}"] if "convolutions" in runtime else []
  if runtime.get("threads"):
    parts.append(counted(runtime["threads"]))
  if "xla_cpu_tuning" in runtime:
    parts.append("XLA:CPU tuning " + ("on" if runtime["xla_cpu_tuning"] else "off"))
  device = env.get("device_kind", "?")
  return (
    f"*Report written {when:%Y-%m-%d %H:%M} UTC on {device}, with {versions}"
    + (f"; runtime: {', '.join(parts)}" if parts else "")
    + ".*\n\n"
  )


def study_block(workdir: str, name: str, folder: str) -> None:
  """Block `name` becomes the study's results.md, a level below its page's title."""
  md = open(os.path.join(workdir, "results.md")).read()
  md = re.sub(r"^(#{1,4}) ", lambda m: "#" * (len(m.group(1)) + 1) + " ", md, flags=re.M)
  figures = os.path.join(DOCS, folder)
  md = md.replace("](figures/", f"]({os.path.relpath(figures, os.path.dirname(page_of(name)))}/")
  os.makedirs(figures, exist_ok=True)
  for fig in os.listdir(os.path.join(workdir, "figures")):
    shutil.copy(os.path.join(workdir, "figures", fig), os.path.join(figures, fig))
  replace_block(name, provenance(workdir) + md)


def first_table(md: str) -> str:
  """The first Markdown table of a report and the caption line after it."""
  found = re.search(r"(^\|.*\|\n)+\n\*[^\n]*\*\n", md, flags=re.M)
  if not found:
    raise SystemExit("the report has no table with a caption")
  return found.group(0)


def recommendation(md: str) -> str:
  """The paragraph of a report's Recommendation section: the arm chosen on validation data and
  every other arm's verdict against it, in the report's words."""
  found = re.search(r"^#+ Recommendation\n\n(.+?)\n(\n|\Z)", md, flags=re.M | re.S)
  if not found:
    raise SystemExit("the report has no Recommendation section")
  return found.group(1) + "\n"


def front(md: str) -> str:
  """The README's evidence: the tuned study's first table with its caption, and its reading."""
  return first_table(md) + "\n" + recommendation(md)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--train-out", help="stdout of `lrjax train --config fashion_mnist`")
  p.add_argument("--train-err", help="stderr of the same run: its per-epoch summary lines")
  for option, (_, _, command) in STUDY_BLOCKS.items():
    p.add_argument("--" + option.replace("_", "-"), help=f"workdir of {command}")
  p.add_argument("--bench", action="store_true", help="take benchmarks/results.md")
  args = p.parse_args()

  import schedule_table

  buf = io.StringIO()
  with contextlib.redirect_stdout(buf):
    schedule_table.main()
  replace_block("schedule-table", buf.getvalue())
  if args.train_out:
    out = open(args.train_out).read().strip()
    if args.train_err:
      epochs = [
        ln for ln in open(args.train_err).read().splitlines() if re.match(r"epoch \d+/\d+: ", ln)
      ]
      out = "\n".join(epochs) + "\n" + out
    replace_block("train-output", f"```\n{out}\n```")
  for option, (name, folder, _) in STUDY_BLOCKS.items():
    if getattr(args, option):
      study_block(getattr(args, option), name, folder)
  if args.study_tuned:
    replace_block("front-results", front(block("study-tuned-results")))
  if args.bench:
    replace_block("benchmarks", open(os.path.join(ROOT, "benchmarks", "results.md")).read())
    for name, stem in BENCHMARK_BLOCKS.items():
      md = os.path.join(ROOT, "benchmarks", f"{stem}.md")
      if os.path.exists(md):
        replace_block(name, open(md).read())


if __name__ == "__main__":
  main()
