"""The training loop on the tiny model and synthetic data: records, compilation, errors, NaN."""

import json
import os
import sys
import time

import jax
import numpy as np
import pytest

import lrjax
from lrjax import cli
from lrjax.config import durations as resolve
from lrjax.train import NonFiniteLossError, train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from runs import build_run  # noqa: E402

from lrjax.configs import smoke  # noqa: E402


def smoke_config(**changes):
  config = smoke.get_config()
  config.dataset = "synthetic:16x16x3:256:64:4"
  config.batch_size = 32
  config.eval_batch_size = 64
  for k, v in changes.items():
    config[k] = v
  return config


def test_run_writes_records_and_compiles_once(tmp_path):
  out = train_and_evaluate(smoke_config(num_epochs=3), str(tmp_path), quiet=True)
  # At most one new program for all epochs and every per-step lr (0 if another test compiled it).
  assert out["compilations"] <= 1
  records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert [r["epoch"] for r in records] == [0, 1, 2]
  for key in (
    "step",
    "lr",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "seconds",
    "images_per_second",
  ):
    assert all(np.isfinite(r[key]) for r in records), key
  schedule = out["run"].schedule
  assert [r["lr"] for r in records] == pytest.approx([float(schedule(s)) for s in (0, 8, 16)])
  assert records[-1]["train_loss"] < records[0]["train_loss"]
  assert out["final_test_accuracy"] > 0.5  # 4 classes: chance is 0.25
  resolved = json.load(open(tmp_path / "config.json"))
  assert resolved["steps_per_epoch"] == 8 and resolved["total_steps"] == 24
  assert resolved["schedule"]["total_steps"] == 24  # {"fraction": 1.0} resolved to steps
  assert json.load(open(tmp_path / "summary.json"))["epochs"] == 3
  assert os.listdir(tmp_path / "checkpoints")


def test_no_recompilation_across_schedule_values(tmp_path):
  run = build_run(smoke_config())
  state = run.init_state()
  perm = np.arange(256)
  sizes = []
  for init in (0.1, 0.05, 0.2):
    schedule = lrjax.linear_decay(init, 24)
    state, metrics = run.train_step(state, run.train_batch(perm, 0), schedule)
    assert float(metrics["lr"]) == pytest.approx(float(schedule(int(state.step) - 1)))
    sizes.append(run.train_step._cache_size())
  # The compiled step is shared with other runs (and tests), so count what these calls added.
  assert sizes[1] == sizes[0] and sizes[2] == sizes[0]
  # The optimizer state shows the lr of the last update.
  assert float(state.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.2 * 22 / 24)


def test_durations_in_epochs_steps_and_fractions():
  cfg = {
    "name": "per_epoch",
    "steps_per_epoch": {"epochs": 1},
    "schedule": {"name": "step_decay", "init_value": 0.1, "drop_factor": 0.5, "drop_every": 2},
  }
  s = resolve.resolve_schedule(cfg, steps_per_epoch=10, total_steps=100)
  assert float(s(19)) == pytest.approx(0.1) and float(s(20)) == pytest.approx(0.05)
  s = resolve.resolve_schedule(
    {
      "name": "triangle",
      "peak_value": 1.0,
      "warmup_steps": {"fraction": 0.25},
      "total_steps": {"steps": 40},
    },
    10,
    40,
  )
  assert float(s(10)) == 1.0 and float(s(40)) == 0.0
  with pytest.raises(ValueError, match="epochs"):
    resolve.resolve_schedule(
      {"name": "linear_decay", "init_value": 0.1, "total_steps": {"epochs": -1}}, 10, 100
    )


@pytest.mark.parametrize(
  "changes, field",
  [
    (dict(model="resnet9000"), "config.model"),
    (dict(dataset="imagenet"), "config.dataset"),
    (dict(batch_size=0), "config.batch_size"),
    (dict(batch_size=1000), "config.batch_size"),
    (dict(num_epochs=-1), "config.num_epochs"),
    (dict(optimizer="lion"), "config.optimizer"),
    (dict(schedule={"name": "nope"}), "nope"),
    (dict(schedule={"name": "linear_decay", "init_value": -1.0, "total_steps": 5}), "init_value"),
  ],
)
def test_bad_config_stops_before_compiling(tmp_path, changes, field):
  with pytest.raises(ValueError, match=field):
    build_run(smoke_config(**changes))


def test_non_finite_loss_stops_with_step_and_lr(tmp_path):
  config = smoke_config(num_epochs=2, checkpoint_every_epochs=1)
  config.schedule = {"name": "step_decay", "init_value": 0.05, "drop_factor": 1e12, "drop_every": 8}
  with pytest.raises(NonFiniteLossError, match=r"at step \d+ \(learning rate"):
    train_and_evaluate(config, str(tmp_path), quiet=True)
  # Epoch 0 was fine and saved; nothing after the blow-up was.
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["8"]


def test_cli_train_with_overrides(tmp_path, capsys):
  code = cli.main(
    [
      "lrjax",
      "train",
      "--config",
      os.path.join(ROOT, "configs", "smoke.py"),
      "--workdir",
      str(tmp_path),
      "--config.num_epochs=1",
      "--config.dataset=synthetic:16x16x3:128:32:4",
      "--config.schedule.init_value=0.02",
    ]
  )
  assert code == 0
  printed = json.loads(capsys.readouterr().out)
  assert printed["epochs"] == 1
  record = json.loads(open(tmp_path / "metrics.jsonl").readline())
  assert record["lr"] == pytest.approx(0.02)


def test_cli_reports_bad_config_field(tmp_path):
  with pytest.raises(SystemExit, match="config.batch_size"):
    cli.main(
      [
        "lrjax",
        "train",
        "--config",
        os.path.join(ROOT, "configs", "smoke.py"),
        "--workdir",
        str(tmp_path),
        "--config.batch_size=-4",
      ]
    )


def test_cli_plot(tmp_path, capsys):
  out = tmp_path / "all.png"
  assert cli.main(["lrjax", "plot", "--all", "--steps", "50", "--out", str(out)]) == 0
  assert out.stat().st_size > 20_000
  with pytest.raises(SystemExit, match="bad --schedule"):
    cli.main(["lrjax", "plot", "--schedule", '{"name": "x"}', "--out", str(out)])


def test_devices_visible():
  assert jax.device_count() >= 1


def test_snapshot_ensemble_of_cosine_cycles(tmp_path):
  config = smoke_config(num_epochs=4, snapshot_ensemble=True)
  config.schedule = {
    "name": "cosine_annealing",
    "peak_value": 0.1,
    "total_steps": {"fraction": 1.0},
    "num_cycles": 2,
  }
  out = train_and_evaluate(config, str(tmp_path), quiet=True)
  assert out["run"].snapshot_epochs == (1, 3)  # 32 steps, period 16 = 2 epochs
  assert sorted(os.listdir(tmp_path / "snapshots")) == ["epoch_00001.npy", "epoch_00003.npy"]
  report = out["snapshot_ensemble"]
  assert report["num_snapshots"] == 2
  records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  # The last snapshot is the final model: its accuracy is the run's final test accuracy.
  assert report["last_snapshot_accuracy"] == pytest.approx(records[-1]["test_accuracy"])
  assert 0.0 <= report["ensemble_accuracy"] <= 1.0 and np.isfinite(report["ensemble_loss"])
  probs = np.load(tmp_path / "snapshots" / "epoch_00001.npy")
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


def test_cycle_end_epochs():
  from lrjax.train.snapshots import cycle_end_epochs

  assert cycle_end_epochs(lrjax.cosine_annealing(0.1, 100, 5), 10, 100) == [1, 3, 5, 7, 9]
  assert cycle_end_epochs(lrjax.cosine_annealing(0.1, 100, 3), 10, 100) == [3, 6, 9]
  assert cycle_end_epochs(lrjax.linear_decay(0.1, 100), 10, 100) == []


def test_runs_differing_only_in_schedule_values_share_one_compilation(tmp_path):
  runs, sizes = [], []
  for init in (0.1, 0.03):
    config = smoke_config(num_epochs=1)
    config.schedule = {"name": "linear_decay", "init_value": init, "total_steps": 8}
    out = train_and_evaluate(config, str(tmp_path / str(init)), quiet=True)
    runs.append(out["run"])
    sizes.append(out["compilations"])
  assert runs[0].train_step is runs[1].train_step
  assert sizes[1] == 0  # the second run compiled nothing new


@pytest.mark.parametrize(
  "changes",
  [
    dict(optimizer="adamw", weight_decay=1e-4, half_precision=True, tensorboard=True),
    dict(optimizer="adam", nesterov=True, augment=False, tensorboard=False),
    dict(optimizer="sgd", nesterov=True, momentum=0.9, stem="imagenet", tensorboard=False),
  ],
)
def test_optimizers_precision_and_tensorboard(tmp_path, changes):
  out = train_and_evaluate(smoke_config(num_epochs=1, **changes), str(tmp_path), quiet=True)
  assert np.isfinite(out["final_test_loss"])
  if changes.get("half_precision"):
    # bfloat16 compute, float32 parameters.
    assert all(p.dtype == np.float32 for p in jax.tree.leaves(out["state"].params))
  if changes["tensorboard"]:
    events = os.listdir(tmp_path / "tb")
    assert events and all(f.startswith("events.out.tfevents") for f in events)


def test_cli_missing_dataset_says_how_to_get_it(tmp_path):
  with pytest.raises(SystemExit, match=r"--config\.data_dir"):
    cli.main(
      [
        "lrjax",
        "train",
        "--config",
        os.path.join(ROOT, "configs", "smoke.py"),
        "--workdir",
        str(tmp_path),
        "--config.dataset=mnist",
        f"--config.data_dir={tmp_path / 'empty'}",
      ]
    )


def test_an_epoch_s_time_includes_waiting_for_its_last_steps(tmp_path, monkeypatch):
  # Steps run asynchronously: an epoch ends when its last step's metrics arrive, not when the
  # step was dispatched (a forked cooldown of 20 steps once reported 199,826 images/s).
  from lrjax.train.trainer import Trainer

  fetch = Trainer._fetch

  def slow_device(self, pending, sums):
    time.sleep(0.25)  # the device still working on the steps dispatched
    return fetch(self, pending, sums)

  monkeypatch.setattr(Trainer, "_fetch", slow_device)
  config = smoke_config(num_epochs=2, log_every_steps=1000)  # one wait per epoch, at its end
  train_and_evaluate(config, str(tmp_path), quiet=True)
  second = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")][1]
  assert second["seconds"] >= 0.25
  assert second["images_per_second"] <= 8 * 32 / 0.25


def test_every_observer_sees_every_moment_whoever_stops_the_loop(tmp_path):
  """Observers share nothing and do not depend on each other's order: one that stops the loop
  at an epoch's end does not keep the others from seeing it (a fork's export is due there)."""
  from lrjax.train.trainer import Member, Observer, Stop, Trainer

  class Stopper(Observer):
    def see(self, trainer, moment):
      return Stop("enough") if moment.epoch_end else None

  class Recorder(Observer):
    def __init__(self):
      self.seen = []

    def start(self, trainer, step):
      self.seen.append(("start", step))

    def see(self, trainer, moment):
      self.seen.append((moment.step, moment.epoch_end, len(moment.history[0])))
      with pytest.raises(AttributeError):  # read-only: a moment's history cannot change
        moment.history[0].append({})

  run = build_run(smoke_config(num_epochs=3, log_every_steps=4))
  for observers in ([Stopper(), Recorder()], [Recorder(), Stopper()]):
    recorder = next(o for o in observers if isinstance(o, Recorder))
    folder = str(tmp_path / type(observers[0]).__name__)
    result = Trainer([Member(run, folder)], folder, observers=observers).fit()
    assert recorder.seen == [("start", 0), (4, False, 0), (8, False, 0), (8, True, 1)]
    assert result.step == 8 and len(result.history[0]) == 1 and result.summaries
