"""A study spread over processes: shards, several processes on one workdir, claims, preemption.

Each test starts real `python -m lrjax` processes on the smoke study and compares what they
leave with one process's study: the same final parameters, bit for bit, and the same report.
"""

import json
import os
import re
import signal
import time

import pytest
from studies import NAMES, SEEDS, finish, hashes, reference_study, start_lrjax, without_times

from lrjax.files.claim import Claim, ClaimedError


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
  return reference_study(tmp_path_factory)


@pytest.mark.slow
def test_two_shards_then_report_equal_one_process(tmp_path, one_process):
  shards = [
    start_lrjax(
      "compare", "--config", "study_smoke", "--workdir", str(tmp_path), "--shard", f"{i}/2"
    )
    for i in range(2)
  ]
  finish(*shards)
  assert not (tmp_path / "results.md").exists()  # a shard writes its cells only
  out = finish(start_lrjax("report", "--workdir", str(tmp_path)))[0]
  assert "not finished" not in out
  assert hashes(tmp_path) == hashes(one_process)
  ours, theirs = ((d / "results.md").read_text() for d in (tmp_path, one_process))
  assert without_times(ours) == without_times(theirs)


@pytest.mark.slow
def test_a_slurm_array_task_is_a_shard(tmp_path):
  env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3"}
  out = finish(
    start_lrjax("compare", "--config", "study_smoke", "--workdir", str(tmp_path), env_extra=env)
  )[0]
  trained = {(n, s) for n in NAMES for s in SEEDS if (tmp_path / "runs" / n / f"seed_{s}").exists()}
  assert trained == {("linear", 0), ("linear", 1)}  # cells 1 and 4 of 6, seed by seed
  assert "shard 1/3 done" in out
  out = finish(start_lrjax("report", "--workdir", str(tmp_path)))[0]
  assert "4 runs not finished" in out


@pytest.mark.slow
def test_two_plain_processes_share_one_workdir(tmp_path, one_process):
  procs = [
    start_lrjax("compare", "--config", "study_smoke", "--workdir", str(tmp_path)) for _ in range(2)
  ]
  outs = finish(*procs)
  pattern = r"\] (\w+) seed (\d): training \([^)]*\)\n(?!    .*waiting for it)"
  trained = [set(re.findall(pattern, out)) for out in outs]
  # Every cell trained by exactly one process; both end with the whole study's report.
  assert not trained[0] & trained[1]
  assert trained[0] | trained[1] == {(n, str(s)) for n in NAMES for s in SEEDS}
  assert hashes(tmp_path) == hashes(one_process)
  ours, theirs = ((d / "results.md").read_text() for d in (tmp_path, one_process))
  assert without_times(ours) == without_times(theirs)


TRAIN = [
  "train",
  "--config",
  "smoke",
  "--config.dataset=synthetic:32x32x3:2048:64:4",  # 64 steps an epoch, about 1.5 s
  "--config.num_epochs=3",
  "--config.log_every_steps=1",
]


@pytest.mark.slow
def test_a_second_train_on_a_busy_workdir_stops_with_a_message(tmp_path):
  first = start_lrjax(*TRAIN, "--workdir", str(tmp_path))
  deadline = time.time() + 120
  while not (tmp_path / "claim.json").exists() and time.time() < deadline:
    time.sleep(0.05)
  second = start_lrjax(*TRAIN, "--workdir", str(tmp_path))
  out2 = finish(second, codes=(1,))[0]
  last = out2.strip().splitlines()[-1]
  assert re.fullmatch(r"lrjax: .* is being trained by \S+ pid \d+ .*", last)
  finish(first)
  records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert [r["epoch"] for r in records] == [0, 1, 2]
  assert not (tmp_path / "claim.json").exists()  # released at the end


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
  """The run the stopped ones must end as: `TRAIN`, uninterrupted."""
  workdir = tmp_path_factory.mktemp("whole")
  finish(start_lrjax(*TRAIN, "--workdir", str(workdir)))
  return workdir


@pytest.mark.slow
def test_sigterm_saves_the_current_step_and_the_same_command_resumes_bitwise(tmp_path, whole):
  cut = tmp_path / "cut"
  proc = start_lrjax(*TRAIN, "--workdir", str(cut))
  deadline = time.time() + 120
  # Mid-epoch 1 (epochs are 64 steps): after the first epoch's checkpoint, before the second's.
  while not (cut / "checkpoints" / "64").exists() and time.time() < deadline:
    time.sleep(0.02)
  time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  out = finish(proc, codes=(75,))[0]
  message = out.strip().splitlines()[-1]
  assert re.fullmatch(r"lrjax: preempted: stopped by SIGTERM at step (\d+); .*resume", message)
  step = int(re.search(r"at step (\d+)", message)[1])
  assert 64 < step < 192 and step % 64  # mid-epoch: saved where it stopped, not at an epoch end
  assert (cut / "checkpoints" / str(step)).exists()
  assert not (cut / "summary.json").exists() and not (cut / "claim.json").exists()
  finish(start_lrjax(*TRAIN, "--workdir", str(cut)))
  for name in ("summary.json",):
    a, b = (json.load(open(d / name)) for d in (whole, cut))
    assert a["params_sha256"] == b["params_sha256"]
  strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "images_per_second")}
  records = [[strip(json.loads(x)) for x in open(d / "metrics.jsonl")] for d in (whole, cut)]
  assert records[0] == records[1]


def _preempt_mid_epoch(workdir):
  proc = start_lrjax(*TRAIN, "--workdir", str(workdir))
  deadline = time.time() + 120
  while not (workdir / "checkpoints" / "64").exists() and time.time() < deadline:
    time.sleep(0.02)
  time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  finish(proc, codes=(75,))


@pytest.mark.slow
def test_a_resume_under_other_threads_keeps_the_bits_or_is_refused(tmp_path, whole):
  cut = tmp_path / "cut"
  _preempt_mid_epoch(cut)
  threads = json.load(open(cut / "config.json"))["runtime"]["threads"]
  # Asked for other numerics: refused in one line, nothing trained.
  other = f"--config.runtime.threads={threads + 1}"
  out = finish(start_lrjax(*TRAIN, "--workdir", str(cut), other), codes=(1,))[0]
  last = out.strip().splitlines()[-1]
  assert f"started with config.runtime.threads={threads}; this run asks for {threads + 1}" in last
  assert last.startswith("lrjax: ") and not (cut / "summary.json").exists()
  # Resumed in a process that gets one CPU, with OpenMP told one thread (as a 1-CPU Ray task or
  # a Slurm step is): the runtime the run started with holds, and so do the bits.
  one_cpu = ["taskset", "-c", str(min(os.sched_getaffinity(0)))] if _taskset() else []
  finish(
    start_lrjax(*TRAIN, "--workdir", str(cut), env_extra={"OMP_NUM_THREADS": "1"}, prefix=one_cpu)
  )
  a, b = (json.load(open(d / "summary.json")) for d in (whole, cut))
  assert a["params_sha256"] == b["params_sha256"]
  assert a["runtime"] == b["runtime"] and b["runtime"]["threads"] == threads


def _taskset() -> bool:
  import shutil

  return hasattr(os, "sched_getaffinity") and shutil.which("taskset") is not None


def test_a_claim_is_exclusive_renewed_and_taken_over_when_expired(tmp_path):
  a = Claim(str(tmp_path), lease=0.6)
  assert a.try_acquire()
  b = Claim(str(tmp_path), lease=0.6)
  assert not b.try_acquire()
  time.sleep(1.0)  # a renews every 0.2 s: still held
  assert not b.try_acquire()
  with pytest.raises(ClaimedError, match=r"is being trained by \S+ pid \d+"):
    with Claim(str(tmp_path)):
      pass
  a._stop.set()  # as if a's process died: no more renewals
  a._thread.join()
  time.sleep(0.8)
  assert b.try_acquire()  # the expired claim is taken over
  a._thread = None
  b.release()
  assert not (tmp_path / "claim.json").exists()
  with pytest.raises(ValueError, match="lease"):
    Claim(str(tmp_path), lease=0)
