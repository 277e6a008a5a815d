"""`lrjax compare --executor ray|slurm`: the same runs, bit for bit, however the cells are spread.

The slow tests start real `python -m lrjax` drivers (a local Ray cluster; submitit's local
executor for Slurm) on the smoke study and compare what they leave with one process's study.
"""

import importlib.util
import json
import os
import re
import signal
import sys
import time

import pytest
from studies import NAMES, SEEDS, finish, hashes, reference_study, start_lrjax, without_times

from lrjax import cli
from lrjax.executors import options
from lrjax.executors.ray import RayOptions
from lrjax.executors.slurm import CellJob, SlurmOptions

STUDY = ["compare", "--config", "study_smoke"]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the [ray] extra")
needs_submitit = pytest.mark.skipif(
  importlib.util.find_spec("submitit") is None, reason="the [slurm] extra"
)
if importlib.util.find_spec("submitit") is not None:
  # Importing submitit configures logging (`logging.config.dictConfig`), which closes every
  # handler made so far; absl's then closes its stream unless that is the current sys.stderr,
  # and inside a `capsys` test it is not (it is pytest's own capture file). Imported here,
  # outside any test's capture, that cannot happen.
  import submitit  # noqa: F401


def _cli(*args):
  with pytest.raises(SystemExit) as e:
    cli.main(["lrjax", *args])
  return e.value.code


@pytest.mark.parametrize(
  "args, pairs",
  [
    (["--ray.address=auto", "x"], {"ray": {"address": "auto"}, "slurm": {}}),
    (
      ["--slurm.partition", "gpu", "--slurm.time=30"],
      {"ray": {}, "slurm": {"partition": "gpu", "time": "30"}},
    ),
  ],
)
def test_split_options(args, pairs):
  rest, got = options.split(args, ("ray", "slurm"))
  assert got == pairs
  assert rest == [a for a in args if a == "x"]


@pytest.mark.parametrize(
  "args, match",
  [
    (["--ray.address"], "needs a value"),
    (["--ray.=1"], "field name"),
    (["--ray.a=1", "--ray.a=2"], "twice"),
  ],
)
def test_split_options_rejects(args, match):
  with pytest.raises(ValueError, match=match):
    options.split(args, ("ray",))


def test_parse_value():
  assert [options.value(t) for t in ("2", "0.5", "true", "gpu")] == [2, 0.5, True, "gpu"]


@pytest.mark.parametrize(
  "flags, match",
  [
    ({"cpus_per_cell": "0"}, r"--ray.cpus_per_cell must be a positive number, got 0"),
    ({"gpus_per_cell": "-1"}, r"--ray.gpus_per_cell must be .*got -1"),
    ({"gpus_per_cell": "1.5"}, r"--ray.gpus_per_cell must be .*got 1.5"),
    ({"max_retries": "x"}, r"--ray.max_retries must be an integer >= 0, got 'x'"),
    ({"num_cpus": "2", "address": "auto"}, r"--ray.num_cpus sizes a local cluster"),
    ({"gpu": "1"}, r"unknown option --ray.gpu;"),
  ],
)
def test_ray_options_name_the_bad_value(flags, match):
  with pytest.raises(ValueError, match=match):
    RayOptions.from_flags(flags)


def test_ray_options():
  o = RayOptions.from_flags({"gpus_per_cell": "0.25", "cpus_per_cell": "2", "address": "ray://h:1"})
  assert (o.gpus_per_cell, o.cpus_per_cell, o.address, o.max_retries) == (0.25, 2, "ray://h:1", 3)


@pytest.mark.parametrize("cpus, threads, warned", [(1, 1, False), (0.5, 1, True), (1, 2, True)])
def test_ray_says_where_a_cell_runs_more_threads_than_its_task_reserves(cpus, threads, warned):
  from lrjax.executors.ray import RayExecutor
  from lrjax.runtime import Spec

  executor = RayExecutor.__new__(RayExecutor)  # no cluster: only what it says of the runtime
  executor._options, said = RayOptions(cpus_per_cell=cpus), []
  executor.start(Spec(threads=threads), said.append)
  assert executor._spec == Spec(threads=threads)  # what every task sets its process up with
  assert bool(said) is warned
  if warned:
    assert f"--ray.cpus_per_cell={threads} reserves what they use" in said[0]


@needs_submitit
@pytest.mark.parametrize(
  "flags, match",
  [
    ({"cluster": "pbs"}, r"--slurm.cluster must be 'slurm' or 'local', got 'pbs'"),
    ({"time": "04:00:00"}, r"--slurm.time must be a whole number of minutes >= 1, got '04:00:00'"),
    ({"array_parallelism": "0"}, r"--slurm.array_parallelism must be an integer >= 1, got 0"),
    ({"partiton": "gpu"}, r"unknown option --slurm.partiton; .*'partition'"),
  ],
)
def test_slurm_options_name_the_bad_value(flags, match):
  with pytest.raises(ValueError, match=match):
    SlurmOptions.from_flags(flags)


@needs_submitit
def test_slurm_options_pass_submitit_fields():
  o = SlurmOptions.from_flags({"partition": "gpu", "gpus_per_task": "1", "cluster": "local"})
  assert o.cluster == "local"
  assert o.fields == {"time": 240, "signal_delay_s": 120, "partition": "gpu", "gpus_per_task": 1}


@pytest.mark.parametrize(
  "extra, message",
  [
    (["--executor", "dask"], "unknown --executor 'dask'"),
    (["--executor", "ray", "--ray.cpus_per_cell=-1"], "--ray.cpus_per_cell must be a positive"),
    (["--ray.cpus_per_cell=1"], "--ray.cpus_per_cell needs --executor ray"),
    (["--executor", "ray", "--shard", "0/2"], "--shard splits a study by hand"),
    (["--no_wait"], "--no_wait needs --executor slurm"),
    (["--executor", "slurm", "--slurm.qos"], "--slurm.qos needs a value"),
  ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, extra, message):
  assert _cli(*STUDY, "--workdir", str(tmp_path), *extra) == 2
  err = capsys.readouterr().err
  assert err.startswith("lrjax: compare: ") and message in err and err.count("\n") == 1
  assert not (tmp_path / "study.json").exists()  # nothing ran


@pytest.mark.parametrize(
  "kind, extra, module", [("ray", "ray", "ray"), ("slurm", "slurm", "submitit")]
)
def test_a_missing_extra_is_named(tmp_path, capsys, monkeypatch, kind, extra, module):
  monkeypatch.setitem(sys.modules, module, None)  # as if not installed
  assert _cli(*STUDY, "--workdir", str(tmp_path), "--executor", kind) == 1
  err = capsys.readouterr().err.strip()
  hint = f"needs the [{extra}] extra: pip install 'lrjax[{extra}]'"
  assert err == f"lrjax: lrjax compare --executor {kind} {hint}"


@needs_submitit
def test_a_cell_job_checkpoints_as_itself():
  job = CellJob()
  delayed = job.checkpoint("spec", "work", "cell")
  assert delayed.function is job and delayed.args == ("spec", "work", "cell")


@pytest.mark.slow
@needs_submitit
def test_a_cell_job_saves_its_step_and_requeues_on_sigusr2(tmp_path, monkeypatch):
  """submitit's SIGUSR2 mid-training: the loop saves the current step, submitit's handler
  requeues (here: records and exits), and the requeued job ends where an unbroken one would."""
  import functools

  from lrjax import config as configs
  from lrjax.compare import cell as cell_lib
  from lrjax.compare import plan
  from lrjax.config.study import Study
  from lrjax.runtime import Spec
  from lrjax.train.trainer import Trainer

  study = Study.of(configs.load("study_smoke"))
  cell = plan.plan(study, str(tmp_path), say=lambda text: None)[0]
  whole = cell_lib.train_cell(study, str(tmp_path / "whole"), cell, quiet=True)
  work = functools.partial(cell_lib.work, study, str(tmp_path / "cut"))
  spec = Spec(threads=1)  # this test process's (conftest.py)

  steps, requeued = [0], []
  step = Trainer.train_step

  def counting_step(self, state, batch):
    steps[0] += 1
    if steps[0] == 6:  # mid-epoch 1 of 2 (4 steps an epoch)
      os.kill(os.getpid(), signal.SIGUSR2)
    return step(self, state, batch)

  def submitit_requeue(signum, frame):  # what submitit installs: checkpoint(), requeue, exit
    requeued.append(signum)
    raise SystemExit(144)

  monkeypatch.setattr(Trainer, "train_step", counting_step)
  previous = signal.signal(signal.SIGUSR2, submitit_requeue)
  try:
    with pytest.raises(SystemExit):
      CellJob()(spec, work, cell)
  finally:
    signal.signal(signal.SIGUSR2, previous)
  run = tmp_path / "cut" / "runs" / cell.names[0] / f"seed_{cell.seed}"
  assert requeued == [signal.SIGUSR2]
  assert (run / "checkpoints" / "6").exists() and not (run / "summary.json").exists()
  assert not (run / "claim.json").exists()
  monkeypatch.setattr(Trainer, "train_step", step)
  resumed = CellJob()(spec, work, cell)
  assert resumed.summaries[0]["params_sha256"] == whole[0]["params_sha256"]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
  """The smoke study in one process, default settings (`studies.reference_study`)."""
  return reference_study(tmp_path_factory)


def _same_study(workdir, one_process, seeds=SEEDS):
  assert hashes(workdir, seeds) == hashes(one_process, seeds)
  if seeds == SEEDS:
    ours, theirs = ((d / "results.md").read_text() for d in (workdir, one_process))
    assert without_times(ours) == without_times(theirs)
  for n in NAMES:  # every run ends with its epochs once each, none redone in the record
    for s in seeds:
      lines = (workdir / "runs" / n / f"seed_{s}" / "metrics.jsonl").read_text().splitlines()
      assert [json.loads(x)["epoch"] for x in lines] == [0, 1]


RAY = ["--executor", "ray", "--ray.num_cpus=2"]  # default settings: 1 CPU a task, 1 thread a cell


def _versions(workdir):
  """Each run's summary.json as (inode, mtime): a file written again gets another one."""
  out = {}
  for n in NAMES:
    for s in SEEDS:
      try:
        st = os.stat(workdir / "runs" / n / f"seed_{s}" / "summary.json")
      except FileNotFoundError:
        continue
      out[n, s] = (st.st_ino, st.st_mtime_ns)
  return out


def _training_pid(workdir, driver):
  for path in workdir.glob("runs/*/seed_*/claim.json"):
    try:
      pid = json.loads(path.read_text())["pid"]
    except (OSError, ValueError, KeyError):  # being written or released
      continue
    if pid != driver and not (path.parent / "summary.json").exists():
      return pid
  return None


@pytest.mark.slow
@needs_ray
def test_ray_a_killed_worker_s_cell_is_retried_and_trained_once(tmp_path, one_process):
  driver = start_lrjax(*STUDY, "--workdir", str(tmp_path), *RAY)
  seen, killed, deadline = {}, None, time.time() + 300
  while driver.poll() is None and time.time() < deadline:
    for run, version in _versions(tmp_path).items():
      seen.setdefault(run, set()).add(version)
    if killed is None:
      pid = _training_pid(tmp_path, driver.pid)
      if pid is not None:
        try:
          os.kill(pid, signal.SIGKILL)
          killed = pid
        except ProcessLookupError:
          pass
    time.sleep(0.02)
  out = finish(driver)[0]
  assert killed is not None, out
  assert "ray: cells as tasks of 1 CPU and 0 GPU on 2 CPUs" in out
  assert json.load(open(tmp_path / "study.json"))["runtime"]["threads"] == 1  # the default
  for run, version in _versions(tmp_path).items():
    seen.setdefault(run, set()).add(version)
  assert all(len(v) == 1 for v in seen.values()) and len(seen) == 6  # each written once
  assert "FAILED" not in out
  assert len(re.findall(r"^\[\d/6\] \w+ seed \d: test accuracy", out, re.M)) == 6
  _same_study(tmp_path, one_process)


@pytest.mark.slow
@needs_submitit
def test_slurm_array_through_submitit_s_local_executor_equals_one_process(tmp_path, one_process):
  # A fresh process a cell: one seed's three cells show it, at half the cost of the six.
  args = ["--executor", "slurm", "--slurm.cluster=local", "--slurm.array_parallelism=2"]
  args.append("--config.study.seeds=(0,)")
  out = finish(start_lrjax(*STUDY, "--workdir", str(tmp_path), *args))[0]
  assert "slurm: cells as local processes, 2 at a time" in out
  assert len(re.findall(r"^\[\d/3\] \w+ seed 0: test accuracy", out, re.M)) == 3
  _same_study(tmp_path, one_process, seeds=(0,))
  assert any((tmp_path / "slurm").iterdir())  # submitit's logs, where the message says


@needs_submitit
def test_slurm_without_sbatch_says_so(tmp_path, capsys, monkeypatch):
  from lrjax.executors import slurm as executors_slurm

  monkeypatch.setattr(executors_slurm.shutil, "which", lambda name: None)
  assert _cli(*STUDY, "--workdir", str(tmp_path), "--executor", "slurm") == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("lrjax: --executor slurm submits with sbatch, which is not on PATH")
  assert not (tmp_path / "slurm").exists()


def test_the_time_left_counts_only_the_cells_this_process_trained(monkeypatch):
  from lrjax.executors import base

  class Cell:
    def label(self):
      return "a seed 0"

  lines, now = [], [100.0]
  monkeypatch.setattr(base.time, "perf_counter", lambda: now[0])
  progress = base.CellProgress(4, lines.append)
  progress.finished(Cell(), "finished earlier, skipped", elsewhere=True)
  progress.finished(Cell(), "finished earlier, skipped", elsewhere=True)
  assert lines[-1].endswith("(0s so far)")  # no pace yet: no estimate
  now[0] += 60
  progress.finished(Cell(), "test accuracy 0.9")
  assert "about 1m00s left" in lines[-1]  # one cell left at 60 s per trained cell


def test_the_loop_waits_as_long_as_its_executor_asks():
  """An executor's `poll` is the loop's: a Slurm cluster's 30 s is not hammered every 2 s."""
  from lrjax.executors import base

  class Cell:
    id, after = "c", ()

    def label(self):
      return "a seed 0"

  class Slow(base.Executor):
    capacity, poll = None, 30.0

    def __init__(self):
      self.timeouts = []

    def submit(self, cells, work):
      return ["h"]

    def wait(self, handles, timeout):
      self.timeouts.append(timeout)
      return [("h", base.Done([]))]

  executor = Slow()
  ran = base.run_cells(
    [Cell()], executor, None, finished=lambda c: False, describe=str, say=lambda t: None
  )
  assert ran == base.Ran([]) and executor.timeouts == [30.0]
