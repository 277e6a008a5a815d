"""Same results on 1 device, 4 devices and two processes; a killed run resumes bit for bit."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVERRIDES = [
  "--config.dataset=synthetic:16x16x3:256:64:4",
  "--config.batch_size=32",
  "--config.eval_batch_size=64",
  "--config.num_epochs=4",
  "--config.checkpoint_every_steps=3",
]


def _train(workdir, devices=1, extra=(), wait=True, env_extra=None):
  env = {
    **os.environ,
    "JAX_NUM_CPU_DEVICES": str(devices),
    "JAX_PLATFORMS": "cpu",
    **(env_extra or {}),
  }
  env.pop("XLA_FLAGS", None)
  cmd = [
    sys.executable,
    "-m",
    "lrjax",
    "train",
    "--config",
    os.path.join(ROOT, "configs", "smoke.py"),
    "--workdir",
    str(workdir),
    *OVERRIDES,
    *extra,
  ]
  proc = subprocess.Popen(
    cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  if not wait:
    return proc
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out
  return _records(workdir)


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  return [
    {k: v for k, v in r.items() if k not in ("seconds", "images_per_second")} for r in records
  ], summary


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
  return _train(tmp_path_factory.mktemp("one_device"))


def _close(a, b, rtol):
  assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
  for ra, rb in zip(a, b):
    for key in ("lr", "train_loss", "test_loss", "train_accuracy", "test_accuracy"):
      assert ra[key] == pytest.approx(rb[key], rel=rtol, abs=1e-5), (key, ra, rb)


@pytest.mark.slow
def test_four_devices_match_one(tmp_path, baseline):
  records, _ = _train(tmp_path, devices=4)
  config = json.load(open(tmp_path / "config.json"))
  assert config["devices"] == 4
  _close(records, baseline[0], rtol=1e-4)


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, baseline):
  port = _free_port()
  procs = [
    _train(
      tmp_path,
      devices=1,
      wait=False,
      extra=[f"--coordinator_address=localhost:{port}", "--num_processes=2", f"--process_id={i}"],
    )
    for i in range(2)
  ]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs
  config = json.load(open(tmp_path / "config.json"))
  assert config["processes"] == 2 and config["devices"] == 2
  records, _ = _records(tmp_path)
  _close(records, baseline[0], rtol=1e-4)


def _kill_and_resume(tmp_path, **kw):
  proc = _train(tmp_path, wait=False, **kw)
  ckpt = tmp_path / "checkpoints"
  deadline = time.time() + 300
  # Kill as soon as a mid-epoch checkpoint (step 3 or 11: epochs are 8 steps) is complete.
  while time.time() < deadline and proc.poll() is None:
    done = {d for d in os.listdir(ckpt)} if ckpt.exists() else set()
    if {"3", "11"} & done:
      break
    time.sleep(0.02)
  assert proc.poll() is None, "the run ended before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (tmp_path / "summary.json").exists()
  return _train(tmp_path, **kw)


@pytest.mark.slow
def test_killed_run_resumes_bitwise(tmp_path, baseline):
  records, summary = _kill_and_resume(tmp_path)
  assert records == baseline[0]  # every epoch's losses, accuracies and lr, bit for bit
  assert summary["params_sha256"] == baseline[1]["params_sha256"]


# A Flax NNX model of the user's (`tests/test_user_inputs.py`), with BatchNorm and Dropout.
NNX = {"extra": ["--config.model=test_user_inputs:NNXNet"], "env_extra": {"PYTHONPATH": "tests"}}


@pytest.mark.slow
def test_an_nnx_model_resumes_bitwise_and_four_devices_match_one(tmp_path):
  whole = _train(tmp_path / "whole", **NNX)
  records, summary = _kill_and_resume(tmp_path / "killed", **NNX)
  assert records == whole[0] and summary["params_sha256"] == whole[1]["params_sha256"]
  four, _ = _train(tmp_path / "four", devices=4, **NNX)
  assert json.load(open(tmp_path / "four" / "config.json"))["devices"] == 4
  _close(four, whole[0], rtol=1e-4)
