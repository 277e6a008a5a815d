"""`lrjax compare --executor local`: worker processes here, the same bits as one process.

The slow tests start real `python -m lrjax` drivers on the smoke study and compare what they
leave with one process's study at the same thread count (a tuned study's workers: in
test_tuned_spread.py).
"""

import json
import os
import re
import signal
import time

import pytest
from studies import finish, hashes, reference_study, start_lrjax
from test_executors import _cli, _same_study, _training_pid, _versions

from lrjax.compare.runner import study_spec
from lrjax.executors.local import LocalExecutor, LocalOptions, cpu_sets
from lrjax.runtime import RuntimeMismatch
from lrjax.runtime.preemption import StopSignal

STUDY = ["compare", "--config", "study_smoke"]
LOCAL = ["--executor", "local"]  # default settings: a worker per CPU, 1 thread a cell


@pytest.mark.parametrize(
  ("flags", "match"),
  [
    ({"workers": "0"}, r"--local.workers must be an integer >= 1, got 0"),
    ({"workers": "two"}, r"--local.workers must be an integer >= 1, got 'two'"),
    ({"workers": "1.5"}, r"--local.workers must be an integer >= 1, got 1.5"),
    ({"cpus": "2"}, r"unknown option --local.cpus; --local.FIELD is one of \['workers'\]"),
  ],
)
def test_local_options_name_the_bad_value(flags, match):
  with pytest.raises(ValueError, match=match):
    LocalOptions.from_flags(flags)


def test_each_worker_gets_its_own_cpus_where_there_are_enough():
  assert cpu_sets([3, 1], 2, 1) == [{1}, {3}]
  assert cpu_sets(range(4), 2, 2) == [{0, 1}, {2, 3}]
  assert cpu_sets(range(4), 3, 1) == [{0}, {1}, {2}]
  assert cpu_sets(range(2), 2, 2) == [None, None]  # too few: they share them


def test_workers_default_to_one_per_cell_s_threads_and_say_where_they_share(monkeypatch):
  from lrjax.runtime import Spec

  said = []
  started = []
  monkeypatch.setattr(LocalExecutor, "_start", lambda self, cpus: started.append(cpus))
  cpus = len(os.sched_getaffinity(0))
  executor = LocalExecutor(LocalOptions(), said.append)
  executor.start(Spec(threads=1), said.append)
  assert executor.capacity == cpus == len(started)  # one worker per CPU at 1 thread each
  executor._previous = {}  # nothing to restore: no handler was ever installed for real
  crowded = LocalExecutor(LocalOptions(workers=cpus + 1), said.append)
  crowded.start(Spec(threads=1), said.append)
  assert crowded.capacity == cpus + 1 and started[-1] is None  # they share the CPUs
  assert "more than the" in said[-1] and f"--local.workers={cpus} fits them" in said[-1]
  for e in (executor, crowded):
    for sig, handler in e._previous.items():
      signal.signal(sig, handler)


def test_a_study_s_runtime_is_resolved_once_whatever_the_executor(tmp_path):
  import json as json_lib

  from lrjax.configs import study_smoke

  config = study_smoke.get_config()
  w = str(tmp_path)
  assert study_spec(config, w).threads == 1  # a new study: one thread per cell
  config.runtime.threads = 2
  assert study_spec(config, w).threads == 2  # the config's
  config.runtime.threads = 0
  (tmp_path / "study.json").write_text(json_lib.dumps({"runtime": {"threads": 2}}))
  assert study_spec(config, w).threads == 2  # the one the study started with
  config.runtime.threads = 1
  with pytest.raises(RuntimeMismatch, match="started with config.runtime.threads=2"):
    study_spec(config, w)


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--executor", "local", "--local.workers=0"], "--local.workers must be an integer >= 1"),
    (["--local.workers=2"], "--local.workers needs --executor local"),
    (["--executor", "local", "--shard", "0/2"], "--executor local spreads it itself"),
  ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
  assert _cli(*STUDY, "--workdir", str(tmp_path), *args) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and message in err[0]


def test_a_repeated_signal_within_a_second_is_the_same_request():
  stop = StopSignal()
  with stop:
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)  # Slurm's, and the driver's forwarded copy
    assert stop.signum == signal.SIGTERM
    stop._at -= 2.0  # a second later: the user insists
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture(scope="module")
def one_thread(tmp_path_factory):
  return reference_study(tmp_path_factory)


def _wait_for_training(workdir, driver, deadline):
  while time.time() < deadline:
    pid = _training_pid(workdir, driver.pid)
    if pid is not None:
      return pid
    assert driver.poll() is None, driver.communicate()[0]
    time.sleep(0.02)
  raise AssertionError("no cell started training")


@pytest.mark.slow
def test_a_killed_worker_fails_its_cell_and_the_same_command_finishes_the_study(
  tmp_path, one_thread
):
  # The study's own compile cache (not the tests' shared one): its workers write and read it,
  # the resumed study too, and the bits are those of the reference study.
  own = {"JAX_COMPILATION_CACHE_DIR": ""}
  driver = start_lrjax(*STUDY, "--workdir", str(tmp_path), *LOCAL, env_extra=own)
  os.kill(_wait_for_training(tmp_path, driver, time.time() + 300), signal.SIGKILL)
  out = finish(driver, codes=(1,))[0]
  assert re.search(r"local: \d+ worker process(es)? of 1 thread on", out), out
  assert re.search(r"FAILED: its worker process died \(exit code -9\)", out), out
  assert "Run the same command again to retry them" in out
  before = _versions(tmp_path)
  finish(start_lrjax(*STUDY, "--workdir", str(tmp_path), *LOCAL, env_extra=own))
  after = _versions(tmp_path)
  assert all(after[run] == v for run, v in before.items())  # finished runs are not redone
  assert json.load(open(tmp_path / "study.json"))["runtime"]["threads"] == 1
  assert any(f.endswith("-cache") for f in os.listdir(tmp_path / "compiled"))
  _same_study(tmp_path, one_thread)


@pytest.mark.slow
def test_sigterm_stops_the_workers_at_a_checkpoint_and_the_study_resumes_bitwise(
  tmp_path, one_thread
):
  driver = start_lrjax(*STUDY, "--workdir", str(tmp_path), *LOCAL)
  _wait_for_training(tmp_path, driver, time.time() + 300)
  time.sleep(1.0)
  driver.send_signal(signal.SIGTERM)
  out = finish(driver, codes=(75,))[0]
  last = out.strip().splitlines()[-1]
  assert "stopped by SIGTERM: the cells in training saved their checkpoints" in last, out
  finish(start_lrjax(*STUDY, "--workdir", str(tmp_path), *LOCAL))
  _same_study(tmp_path, one_thread)


@pytest.mark.slow
def test_on_xla_s_convolutions_two_workers_equal_one_process(tmp_path):
  # The runtime a user gets without oneDNN (or asks for): its bits must not depend on the
  # executor either.
  xla = ["--config.runtime.convolutions=xla", "--config.runtime.threads=1"]
  xla.append("--config.study.seeds=(0,)")  # 3 cells: two workers busy, half the time
  # One process compiling everything itself, two workers sharing the study's compile cache.
  none = {"JAX_COMPILATION_CACHE_DIR": "", "JAX_ENABLE_COMPILATION_CACHE": "false"}
  finish(start_lrjax(*STUDY, "--workdir", str(tmp_path / "one"), *xla, env_extra=none))
  assert not (tmp_path / "one" / "compiled").exists()
  local = ["--executor", "local", "--local.workers=2", *xla]
  own = {"JAX_COMPILATION_CACHE_DIR": ""}
  out = finish(start_lrjax(*STUDY, "--workdir", str(tmp_path / "local"), *local, env_extra=own))
  assert "runtime: convolutions XLA, 1 thread" in out[0], out[0]
  assert any(f.endswith("-cache") for f in os.listdir(tmp_path / "local" / "compiled"))
  one, two = (hashes(tmp_path / w, seeds=(0,)) for w in ("one", "local"))
  assert len(one) == 3 and one == two
