"""Rewrites the README's generated blocks from what the code produced.

    python scripts/update_readme.py --train-out runs/fmnist.out --study runs/study_fmnist

Blocks sit between `<!-- BEGIN name -->` and `<!-- END name -->`:
- `schedule-table`: scripts/schedule_table.py's table of every registered schedule;
- `train-output`: the JSON summary `lrjax train` printed (--train-out, a captured stdout);
- `study-results`: the study's results.md, and its figures copied to docs/ (--study, a workdir);
- `study-medium-results`: the same for the 5-seed `:medium` variant (--study-medium, a workdir);
- `study-beyond-results`, `study-budgets-results`: the same for `:beyond` and `:budgets`
  (--study-beyond, --study-budgets);
- `study-tuned-results`, `study-tuned-budgets-results`: the same for `:tuned` and
  `:tuned_budgets` (--study-tuned, --study-tuned-budgets);
- `own-next-token-results`, `own-fashion-mnist-results`: the same for the studies of the examples
  `examples/next_token.py` and `examples/fashion_mnist_nnx.py` (--own-next-token,
  --own-fashion-mnist);
- `benchmarks`: benchmarks/results.md as `python benchmarks/run.py` last wrote it (--bench), and
  with it `conv-variants`, `onednn` and `onednn-accuracy`: the .md files that
  benchmarks/conv_variants.py, onednn_layers.py and onednn_accuracy.py last wrote.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# README block -> the benchmarks/<stem>.md its script writes (copied with --bench).
BENCHMARK_BLOCKS = {
  "conv-variants": "conv_variants",
  "onednn": "onednn_layers",
  "onednn-accuracy": "onednn_accuracy",
  "onednn-builds": "onednn_builds",
  "tuning-grid": "tuning_grid",
}


def replace_block(text: str, name: str, body: str) -> str:
  pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
  if not pattern.search(text):
    raise SystemExit(f"README has no block {name!r}")
  return pattern.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(2), text)


def _study_block(text: str, workdir: str, block: str, docs: str) -> str:
  md = open(os.path.join(workdir, "results.md")).read()
  # Nested under the README's own headings; its figures' links point where they are copied.
  md = re.sub(r"^(#{1,3}) ", lambda m: "#" * (len(m.group(1)) + 3) + " ", md, flags=re.M)
  md = md.replace("](figures/", f"]({os.path.relpath(docs, ROOT)}/")
  os.makedirs(docs, exist_ok=True)
  for name in os.listdir(os.path.join(workdir, "figures")):
    shutil.copy(os.path.join(workdir, "figures", name), os.path.join(docs, name))
  return replace_block(text, block, md)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--train-out", help="stdout of `lrjax train --config fashion_mnist`")
  p.add_argument("--train-err", help="stderr of the same run: its per-epoch summary lines")
  p.add_argument("--study", help="workdir of `lrjax compare --config study_fashion_mnist`")
  p.add_argument("--study-medium", help="workdir of the same study's :medium variant")
  p.add_argument("--study-beyond", help="workdir of the same study's :beyond variant")
  p.add_argument("--study-budgets", help="workdir of the same study's :budgets variant")
  p.add_argument("--study-tuned", help="workdir of the same study's :tuned variant")
  p.add_argument("--study-tuned-budgets", help="workdir of its :tuned_budgets variant")
  p.add_argument("--own-next-token", help="workdir of `python examples/next_token.py`")
  p.add_argument("--own-fashion-mnist", help="workdir of `python examples/fashion_mnist_nnx.py`")
  p.add_argument("--bench", action="store_true", help="take benchmarks/results.md")
  args = p.parse_args()
  path = os.path.join(ROOT, "README.md")
  text = open(path).read()

  import schedule_table

  buf = io.StringIO()
  with contextlib.redirect_stdout(buf):
    schedule_table.main()
  text = replace_block(text, "schedule-table", buf.getvalue())
  if args.train_out:
    out = open(args.train_out).read().strip()
    if args.train_err:
      epochs = [
        ln for ln in open(args.train_err).read().splitlines() if re.match(r"epoch \d+/\d+: ", ln)
      ]
      out = "\n".join(epochs) + "\n" + out
    text = replace_block(text, "train-output", f"```\n{out}\n```")
  for workdir, block, docs in (
    (args.study, "study-results", "study_fashion_mnist"),
    (args.study_medium, "study-medium-results", "study_fashion_mnist_medium"),
    (args.study_beyond, "study-beyond-results", "study_fashion_mnist_beyond"),
    (args.study_budgets, "study-budgets-results", "study_fashion_mnist_budgets"),
    (args.study_tuned, "study-tuned-results", "study_fashion_mnist_tuned"),
    (args.study_tuned_budgets, "study-tuned-budgets-results", "study_fashion_mnist_tuned_budgets"),
    (args.own_next_token, "own-next-token-results", "own_next_token"),
    (args.own_fashion_mnist, "own-fashion-mnist-results", "own_fashion_mnist_nnx"),
  ):
    if workdir:
      text = _study_block(text, workdir, block, os.path.join(ROOT, "docs", docs))
  if args.bench:
    text = replace_block(
      text, "benchmarks", open(os.path.join(ROOT, "benchmarks", "results.md")).read()
    )
    for block, stem in BENCHMARK_BLOCKS.items():
      md = os.path.join(ROOT, "benchmarks", f"{stem}.md")
      if os.path.exists(md):
        text = replace_block(text, block, open(md).read())
  with open(path, "w") as f:
    f.write(text)


if __name__ == "__main__":
  main()
