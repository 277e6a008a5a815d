"""A run resumed past a damaged newest checkpoint says so in one line, and prints nothing else.

The damage is to the OCDBT manifest of the checkpoint's arrays, which every array read opens
first: Orbax's concurrent reads all fail, and those still in flight when its restore gave up used
to call back into a closed event loop, each printing `RuntimeError: Event loop is closed`.
"""

import json
import os
import subprocess
import sys

SMALL = [
  "--config",
  "smoke",
  "--config.dataset=synthetic:16x16x3:256:64:4",  # 8 steps an epoch
  "--config.batch_size=32",
  "--config.eval_batch_size=64",
  "--config.num_epochs=2",
  "--config.runtime.convolutions=xla",  # no oneDNN kernels to compile
]


def _train(workdir) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, "-m", "lrjax", "train", "--workdir", str(workdir), *SMALL],
    cwd=workdir.parent,
    capture_output=True,
    text=True,
    timeout=600,
  )


def test_resuming_past_a_damaged_checkpoint_prints_one_warning_and_nothing_else(tmp_path):
  workdir = tmp_path / "run"
  first = _train(workdir)
  assert first.returncode == 0, first.stderr
  folder = workdir / "checkpoints"
  steps = sorted(int(name) for name in os.listdir(folder) if name.isdigit())
  assert len(steps) == 2, steps
  newest = folder / str(steps[-1])
  manifest = newest / "state" / "manifest.ocdbt"
  os.truncate(manifest, os.path.getsize(manifest) // 2)
  os.remove(workdir / "summary.json")

  resumed = _train(workdir)
  err = resumed.stderr
  assert resumed.returncode == 0, err
  warnings = [line for line in err.splitlines() if line.startswith("lrjax: warning")]
  assert len(warnings) == 1, err
  assert f"checkpoint {newest} is damaged" in warnings[0]
  assert f"moved to {folder / 'damaged' / str(steps[-1])}" in warnings[0]
  for noise in ("Traceback", "Event loop is closed", "Task exception was never retrieved"):
    assert noise not in err, err
  # Resumed from the older checkpoint: the second epoch trained again, and the run finished.
  assert (folder / "damaged" / str(steps[-1])).is_dir()
  assert (workdir / "summary.json").is_file()
  assert [json.loads(line)["epoch"] for line in open(workdir / "metrics.jsonl")] == [0, 1]
