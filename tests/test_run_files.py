"""The files a run leaves: written atomically, versions recorded, damaged checkpoints set aside."""

import io
import json
import logging
import os

import jax
import pytest
from test_train import smoke_config

import lrjax
from lrjax.clock import duration, so_far
from lrjax.files.atomic import write_json
from lrjax.files.run_dir import RunDir, State
from lrjax.train import checkpoint, train_and_evaluate
from lrjax.train.progress import RunProgress


def _damage(folder):
  """Flips bytes in the middle of every file of a checkpoint (as a disk error would)."""
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      size = os.path.getsize(path)
      if size > 8:
        with open(path, "r+b") as f:
          f.seek(size // 2)
          chunk = f.read(8)
          f.seek(size // 2)
          f.write(bytes(b ^ 0xFF for b in chunk))


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_run_resumes(tmp_path, capfd, caplog):
  config = smoke_config(num_epochs=3, keep_checkpoints=3)
  whole = train_and_evaluate(config, str(tmp_path / "whole"), quiet=True)
  # The same run again, its newest checkpoint (24) damaged and its summary gone: 16 is intact.
  out = tmp_path / "cut"
  train_and_evaluate(config, str(out), quiet=True)
  os.remove(out / "summary.json")
  _damage(out / "checkpoints" / "24")
  capfd.readouterr()
  caplog.set_level(logging.INFO, logger="absl")
  resumed = train_and_evaluate(config, str(out), quiet=True)
  err = capfd.readouterr().err
  assert f"checkpoint {out / 'checkpoints' / '24'} is damaged" in err
  # lrjax's warning is the one line about it: orbax's own ERROR records are kept out.
  assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
  assert (out / "checkpoints" / "damaged" / "24").is_dir()
  # Resumed from step 16, epoch 2 trained again: the same final parameters.
  assert resumed["params_sha256"] == whole["params_sha256"]
  assert [json.loads(x)["epoch"] for x in open(out / "metrics.jsonl")] == [0, 1, 2]


def test_with_no_intact_checkpoint_one_line_says_so(tmp_path):
  out = tmp_path / "run"
  train_and_evaluate(smoke_config(num_epochs=1), str(out), quiet=True)
  _damage(out / "checkpoints")
  with pytest.raises(checkpoint.DamagedCheckpointError, match="no intact checkpoint in") as info:
    train_and_evaluate(smoke_config(num_epochs=2), str(out), quiet=True)
  assert "\n" not in str(info.value)


def test_files_a_reader_trusts_are_replaced_whole(tmp_path, monkeypatch):
  path = str(tmp_path / "summary.json")
  write_json(path, {"a": 1})
  real = os.replace

  def crash(src, dst):
    raise OSError("killed before the rename")

  monkeypatch.setattr(os, "replace", crash)
  with pytest.raises(OSError):
    write_json(path, {"a": 2, "b": list(range(10_000))})
  monkeypatch.setattr(os, "replace", real)
  assert json.load(open(path)) == {"a": 1}  # the old file, whole: never half of the new one


def test_summary_and_results_record_versions_device_and_runtime(tmp_path):
  out = train_and_evaluate(smoke_config(num_epochs=1), str(tmp_path), quiet=True)
  summary = json.load(open(tmp_path / "summary.json"))
  assert summary["runtime"] == out["run"].runtime.record()
  assert json.load(open(tmp_path / "config.json"))["runtime"] == summary["runtime"]
  assert {"convolutions", "threads", "xla_cpu_tuning", "platform"} <= set(summary["runtime"])
  env = summary["environment"]
  assert env == out["environment"]
  assert set(env["versions"]) == {"lrjax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint"}
  assert env["versions"]["lrjax"] == lrjax.__version__
  assert env["versions"]["jax"] == jax.__version__
  assert env["device_kind"] == jax.devices()[0].device_kind and env["platform"] == "cpu"


def test_progress_shows_the_time_left():
  stream = io.StringIO()
  p = RunProgress(num_epochs=2, steps_per_epoch=10, stream=stream)
  p.update(0, 10, {"last_lr": 0.1, "last_loss": 1.0}, 1.0, 32)
  line = stream.getvalue()
  assert "epoch 1/2" in line and " left" in line and "?" not in line
  p.epoch_done(
    {
      "epoch": 0,
      "lr": 0.1,
      "train_loss": 1,
      "train_accuracy": 0.5,
      "test_loss": 1,
      "test_accuracy": 0.5,
      "seconds": 1,
      "images_per_second": 320,
    },
    label="linear",
  )
  assert "linear: epoch 1/2" in stream.getvalue() and "val loss" not in stream.getvalue()
  p.epoch_done(
    {
      "epoch": 1,
      "lr": 0.1,
      "train_loss": 1,
      "train_accuracy": 0.5,
      "validation_loss": 0.9,
      "validation_accuracy": 0.625,
      "test_loss": 1,
      "test_accuracy": 0.5,
      "seconds": 1,
      "images_per_second": 320,
    }
  )
  assert "val loss 0.9000 acc 0.6250  test loss 1.0000 acc 0.5000" in stream.getvalue()
  assert [duration(s) for s in (5, 65, 3725, float("nan"))] == ["5s", "1m05s", "1h02m", "?"]
  assert so_far(10, 0, 4) == "10s so far" and so_far(10, 4, 4) == "10s so far"
  assert so_far(10, 1, 3) == "10s so far, about 20s left"


def test_preempted_survives_pickling():
  # Ray and submitit send a task's exception back to the driver pickled.
  import pickle
  import signal

  from lrjax.runtime.preemption import Preempted

  e = pickle.loads(pickle.dumps(Preempted(7, signal.SIGTERM)))
  assert (e.step, e.signum) == (7, signal.SIGTERM) and "at step 7" in str(e)


def test_a_run_folder_says_where_its_run_stands(tmp_path):
  run = RunDir(str(tmp_path / "run"))
  assert run.state() is State.NEW and not run.done() and run.summary() is None
  assert run.records() == [] and run.recorded_runtime() is None
  os.makedirs(run.checkpoints)
  assert run.state() is State.STARTED
  run.write_config({"config": {}, "runtime": {"threads": 1}})
  assert run.recorded_runtime() == {"threads": 1}
  run.write_records([{"epoch": 0, "a": 1}, {"epoch": 1, "a": 2}])
  assert [r["epoch"] for r in run.records(before_epoch=1)] == [0]
  run.fail("cosine seed 0: mine:train raised ZeroDivisionError")
  assert run.state() is State.FAILED and not run.done()
  run.write_summary({"final_test_accuracy": 0.5})  # a retry that finished clears the failure
  assert run.state() is State.FINISHED and run.failure() is None and run.done()
  run.write_summary({"diverged": {"step": 3}})
  assert run.state() is State.DIVERGED and run.finished()
  skipped = RunDir(str(tmp_path / "extension"))
  skipped.skip("the best point is not on the low edge")
  assert skipped.state() is State.SKIPPED and skipped.done() and not skipped.finished()


def test_one_summary_builder_with_one_best_epoch_rule():
  from lrjax.train import records

  epochs = [
    {
      "epoch": 0,
      "step": 4,
      "test_accuracy": 0.5,
      "test_loss": 1.0,
      "train_loss": 1.2,
      "validation_accuracy": 0.7,
      "validation_loss": 0.9,
      "seconds": 1.0,
    },
    {
      "epoch": 1,
      "step": 8,
      "test_accuracy": 0.6,
      "test_loss": 0.9,
      "train_loss": 1.0,
      "validation_accuracy": 0.7,
      "validation_loss": 0.8,
      "seconds": 2.0,
    },
  ]
  out = records.summary(epochs, {"name": "constant"}, {"threads": 1})
  assert (out["best_epoch"], out["test_accuracy_at_best_epoch"]) == (0, 0.5)  # earliest of equals
  assert (out["final_test_accuracy"], out["final_validation_loss"], out["steps"]) == (0.6, 0.8, 8)
  assert out["seconds"] == 3.0 and out["epochs"] == 2
  # A training function's own final metrics win over its curves' last row.
  final = records.summary(epochs, {}, {}, final={"test_accuracy": 0.9, "test_loss": 0.1})
  assert final["final_test_accuracy"] == 0.9 and final["best_epoch"] == 0
  without = records.summary([{k: v for k, v in epochs[0].items() if "validation" not in k}], {}, {})
  assert "best_epoch" not in without  # no validation data: test data chooses nothing
  diverged = records.summary(epochs[:1], {}, {}, {"step": 5, "lr": 9.0, "message": "nan"})
  assert diverged["final_test_accuracy"] is None and diverged["diverged"]["step"] == 5
