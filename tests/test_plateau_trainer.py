"""`config.plateau`: `lrjax.plateau` after the optimizer of `lrjax train` and of a study's arms,
fed validation metrics by the loop; without it, a run is the program it always was."""

import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runs import EveryStep, assert_the_program_it_was, build_run, synthetic_arrays
from test_train import smoke_config

from lrjax import cli
from lrjax.compare import folders, runner
from lrjax.config import experiment as experiment_lib
from lrjax.config import study as study_lib
from lrjax.config.checks import ConfigError
from lrjax.configs import study_smoke
from lrjax.plot import study as study_plot
from lrjax.train import build
from lrjax.train import step as step_lib
from lrjax.train.trainer import Member, Observer, Trainer

# Improving needs a metric below a tenth of the best so far: after the first value, which
# improves on +inf, every evaluation reduces, whatever the data.
REDUCES = {"factor": 0.5, "patience": 1, "rtol": 0.9, "warmup_steps": {"epochs": 1}}
COSINE = {
  "name": "warmup_cosine_decay",
  "init_value": 0.0,
  "peak_value": 0.05,
  "warmup_steps": {"fraction": 0.2},
  "decay_steps": {"fraction": 1.0},
}


def plateau_config(plateau=REDUCES, **changes):
  """The smoke run on 192 training images (6 steps an epoch) and 64 validation ones."""
  config = smoke_config(**{"validation_fraction": 0.25, "schedule": COSINE, **changes})
  config.plateau = plateau
  return config


# ------------------------------------------------------------------------------- the config


@pytest.mark.parametrize(
  "plateau, message",
  [
    ({"factor": 2.0}, "config.plateau.factor must be in (0.0, 1.0), got 2.0"),
    ({"patince": 2}, "config.plateau.patince: a plateau has no setting 'patince'"),
    ({"metric": "test_loss"}, "config.plateau.metric must be one of ['validation_loss', 'valid"),
    ({"metric": "validation_accuracy", "mode": "min"}, "config.plateau.mode='min' does not fit"),
    ({"warmup_steps": {"epochs": -1}}, "config.plateau.warmup_steps must be a non-negative"),
    ({"every_steps": -3}, "config.plateau.every_steps must be an integer >= 0, got -3"),
    ({"window": 0}, "config.plateau.window must be a positive integer, got 0"),
    (3, "config.plateau must be a dict, got 3"),
  ],
)
def test_a_bad_setting_is_one_line_naming_it(plateau, message):
  with pytest.raises(ConfigError) as error:
    experiment_lib.parse(plateau_config(plateau))
  assert message in str(error.value) and "\n" not in str(error.value), str(error.value)


@pytest.mark.parametrize(
  "changes, message",
  [
    (dict(validation_fraction=0.0), "config.plateau reads validation metrics, and this run has no"),
    (dict(optimizer="schedule_free_sgd"), "config.plateau: config.optimizer='schedule_free_sgd'"),
  ],
)
def test_a_plateau_needs_validation_data_and_an_optimizer_it_can_scale(changes, message):
  with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
    experiment_lib.parse(plateau_config(**changes))


def test_a_user_dataset_without_a_validation_split_is_refused_when_built():
  config = plateau_config(validation_fraction=0.0, dataset="test_plateau_trainer:load_data")
  experiment_lib.parse(config)  # its loader might bring a validation split of its own
  with pytest.raises(ConfigError, match="config.plateau reads validation metrics"):
    build_run(config)


def test_durations_are_steps_and_mode_follows_the_metric():
  config = plateau_config(
    {"metric": "validation_accuracy", **REDUCES, "every_steps": {"epochs": 0.5}}
  )
  run = build_run(config)
  assert (run.plateau.metric, run.plateau.every_steps) == ("validation_accuracy", 3)
  settings = dict(run.plateau.settings)
  assert settings["warmup_steps"] == 6 and settings["mode"] == "max"
  e = run.experiment
  assert experiment_lib.parse(e.to_dict()) == e
  assert run.resolved_config()["plateau"]["warmup_steps"] == 6


# ------------------------------------------------------------------ no plateau: the same program


@pytest.mark.parametrize("empty", [{}, None])
def test_without_a_plateau_a_run_is_the_program_it_always_was(empty):
  """An empty field against none at all, and against the optimizer written as it was before
  the field: the same experiment, record, optimizer, state, compiled program and bits."""
  config = smoke_config()
  config.plateau = empty
  run = build_run(config)
  assert run.experiment == experiment_lib.parse(smoke_config()) and run.plateau is None
  assert "plateau" not in run.resolved_config() and "plateau" not in run.experiment.to_dict()
  assert run.tx is build.build_optimizer(experiment_lib.parse(smoke_config()))
  state = run.init_state()
  assert state.plateau is None
  assert set(state.checkpoint_items()) == {"step", "params", "batch_stats", "opt_state", "key"}
  assert_the_program_it_was(run)


# ------------------------------------------------------------------------------- the step


def test_the_step_reads_the_fed_metric_once_and_compiles_once():
  run = build_run(plateau_config({"factor": 0.5, "patience": 1}))
  state, perm = run.init_state(), np.arange(192)
  assert state.plateau is not None and "plateau" in state.checkpoint_items()
  scales, lrs = [], []
  # Fed, not fed, fed the same (no improvement: a reduction), not fed, fed again.
  for t, (value, new) in enumerate([(1.0, True), (0.0, False), (1.0, True), (0.0, False)] * 2):
    feed = step_lib.PlateauFeed(jnp.float32(value), jnp.asarray(new))
    state, metrics = run.train_step(
      state.replace(plateau=run.placement.put_replicated(feed)),
      run.train_batch(perm, t % 6),
      run.step_schedules,
    )
    assert not bool(state.plateau.is_new)  # read by this update: the next one waits
    scales.append(float(metrics["plateau_scale"]))
    lrs.append(float(metrics["lr"]))
  assert scales == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
  expected = [float(run.schedule(t) * s) for t, s in enumerate(scales)]
  assert lrs == expected
  assert run.train_step._cache_size() == 1  # values and flags are traced: one program


# ------------------------------------------------------------------------------- the loop


def _fit(config, workdir, **kw):
  seen = EveryStep()
  run = build_run(config)
  result = Trainer([Member(run, str(workdir))], str(workdir), observers=[seen], **kw).fit()
  return run, result, seen.metrics


def test_a_run_records_its_scale_and_effective_rate_each_epoch_and_step(tmp_path):
  run, _, steps = _fit(plateau_config(num_epochs=5), tmp_path)
  records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert [r["plateau_scale"] for r in records] == [1.0, 1.0, 0.5, 0.25, 0.125]
  spe = run.steps_per_epoch
  for r in records:
    first = r["epoch"] * spe
    assert r["lr"] == pytest.approx(float(run.schedule(first)) * r["plateau_scale"], rel=1e-6)
    # Fed at epoch ends: every update of an epoch applies the epoch's scale.
    assert {steps[t]["plateau_scale"] for t in range(first, first + spe)} == {r["plateau_scale"]}
    assert steps[first]["lr"] == pytest.approx(r["lr"], rel=1e-6)
  resolved = json.load(open(tmp_path / "config.json"))
  assert resolved["plateau"]["warmup_steps"] == spe and resolved["plateau"]["every_steps"] == 0
  assert experiment_lib.parse(resolved["config"]) == run.experiment


def test_fed_every_n_steps_the_scale_changes_where_a_metric_arrives(tmp_path):
  plateau = {**REDUCES, "every_steps": 4, "warmup_steps": 4}
  _, _, steps = _fit(plateau_config(plateau, num_epochs=3), tmp_path)
  scales = [steps[t]["plateau_scale"] for t in sorted(steps)]
  changes = [t for t in range(1, len(scales)) if scales[t] != scales[t - 1]]
  # Update t reads the metric evaluated after t updates: t = 8, 12, 16 (4 improved on +inf).
  assert changes == [8, 12, 16] and scales[-1] == 0.125


def test_a_run_evaluated_at_its_end_alone_feeds_the_same_metrics(tmp_path):
  """A tuning run evaluates its validation split at its last epoch alone: the plateau's
  evaluations are made all the same, and the run ends with the same bits."""
  config = plateau_config(num_epochs=4)
  _, every, _ = _fit(config, tmp_path / "every")
  _, last, _ = _fit(config, tmp_path / "last", splits=("validation",), every_epoch=False)
  for a, b in zip(
    jax.tree.leaves(every.train_state.params), jax.tree.leaves(last.train_state.params)
  ):
    np.testing.assert_array_equal(a, b)
  assert "validation_loss" not in last.history[0][0] and last.history[0][-1]["plateau_scale"] < 1


def test_a_population_feeds_each_member_its_own_metric(tmp_path):
  configs = [
    plateau_config(num_epochs=4),
    plateau_config(num_epochs=4, schedule={"name": "constant", "value": 0.02}),
  ]
  runs = [build_run(c) for c in configs]
  members = [Member(r, str(tmp_path / str(i))) for i, r in enumerate(runs)]
  together = Trainer(members, str(tmp_path / "pop"), vmapped=True).fit()
  for i, config in enumerate(configs):
    _, alone, _ = _fit(config, tmp_path / f"alone_{i}")
    assert [r["plateau_scale"] for r in together.history[i]] == [1.0, 1.0, 0.5, 0.25]
    pairs = zip(
      jax.tree.leaves(together.train_state.params), jax.tree.leaves(alone.train_state.params)
    )
    for a, b in pairs:
      np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------- a stop and a resume


def _config_file(tmp_path, convolutions="auto"):
  path = tmp_path / "plateau_cosine.py"
  path.write_text(
    "from lrjax.configs import smoke\n\n\n"
    "def get_config():\n"
    "  config = smoke.get_config()\n"
    "  config.dataset = 'synthetic:16x16x3:256:64:4'\n"
    "  config.validation_fraction = 0.25  # 6 steps an epoch\n"
    "  config.num_epochs = 5\n"
    f"  config.schedule = {COSINE!r}\n"
    f"  config.plateau = {REDUCES!r}\n"
    f"  config.runtime.convolutions = {convolutions!r}\n"
    "  return config\n"
  )
  return str(path)


def _train(path, workdir):
  try:
    return cli.main(["lrjax", "train", "--config", path, "--workdir", str(workdir)])
  except SystemExit as e:
    return e.code


# "auto" is oneDNN's convolutions where the [train] extra brings them (CI asserts it), else XLA's.
@pytest.mark.parametrize("convolutions", ["auto", "xla"])
@pytest.mark.parametrize("signal_after, saved_at", [(15, 16), (17, 18)])
def test_a_plateau_scaled_cosine_resumes_bitwise_after_sigterm(
  tmp_path, monkeypatch, capsys, signal_after, saved_at, convolutions
):
  """`lrjax train` stopped by SIGTERM inside epoch 2 (after its reduction at update 12, before
  those at 18 and 24), or at epoch 2's end (its metric fed and not yet read), resumes to the
  bits of an uninterrupted run: the plateau's state and its metric are in the checkpoint."""
  path = _config_file(tmp_path, convolutions)
  assert _train(path, tmp_path / "whole") == 0
  real = Trainer.__init__

  class Sigterm(Observer):
    def wants_sync(self, trainer, step):
      return step == signal_after

    def see(self, trainer, moment):
      if moment.step == signal_after and not moment.epoch_end:
        os.kill(os.getpid(), signal.SIGTERM)

  def with_sigterm(self, *args, observers=(), **kwargs):
    real(self, *args, observers=[*observers, Sigterm()], **kwargs)

  monkeypatch.setattr(Trainer, "__init__", with_sigterm)
  assert _train(path, tmp_path / "cut") == 75
  assert f"stopped by SIGTERM at step {saved_at}" in capsys.readouterr().err
  assert (tmp_path / "cut" / "checkpoints" / str(saved_at)).exists()
  monkeypatch.undo()
  assert _train(path, tmp_path / "cut") == 0
  a, b = (json.load(open(tmp_path / d / "summary.json")) for d in ("whole", "cut"))
  assert a["params_sha256"] == b["params_sha256"]
  strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "images_per_second")}
  records = [
    [strip(json.loads(x)) for x in open(tmp_path / d / "metrics.jsonl")] for d in ("whole", "cut")
  ]
  assert records[0] == records[1]
  assert [r["plateau_scale"] for r in records[0]] == [1.0, 1.0, 0.5, 0.25, 0.125]


# ------------------------------------------------------------------------------ a study


def load_data():
  return synthetic_arrays(256, permute_test=False)


def load_data_with_permuted_test_labels():
  return synthetic_arrays(256, permute_test=True)


def _study(loader: str):
  config = study_smoke.get_config()
  config.dataset = f"test_plateau_trainer:{loader}"
  config.snapshot_ensemble = False
  config.num_epochs = 4
  config.study.schedules = {"cosine": COSINE}
  config.study.arms = {"cosine_plateau": {"schedule": COSINE, "plateau": REDUCES}}
  config.study.order = ("cosine", "cosine_plateau")
  config.study.labels = {"cosine": "Cosine", "cosine_plateau": "Cosine on a plateau"}
  config.study.seeds = (0,)
  return config


def test_a_study_arm_using_it_reads_validation_metrics_only(tmp_path):
  """Permuted test labels: the same run, bit for bit (the plateau reads validation metrics),
  while the test metrics changed."""
  runs = {}
  for loader in ("load_data", "load_data_with_permuted_test_labels"):
    study = study_lib.parse(_study(loader))
    assert not study.schedule_only()  # a plateau arm is more than its schedule: trained alone
    runner.compare(_study(loader), str(tmp_path / loader), quiet=True)
    folder = folders.run_dir(str(tmp_path / loader), "cosine_plateau", 0)
    summary = json.load(open(os.path.join(folder, "summary.json")))
    scales = [json.loads(x)["plateau_scale"] for x in open(os.path.join(folder, "metrics.jsonl"))]
    runs[loader] = (summary["params_sha256"], summary["final_test_accuracy"], scales)
  (params_a, test_a, scales_a), (params_b, test_b, scales_b) = runs.values()
  assert scales_a == scales_b == [1.0, 1.0, 0.5, 0.25]
  assert params_a == params_b and test_a != test_b


def test_an_arm_with_a_plateau_needs_lrjax_s_engine():
  config = _study("load_data")
  config.study.train_fn = "function_fns:train"
  config.study.steps_per_epoch = 4
  with pytest.raises(ConfigError, match=r"config.study.arms.cosine_plateau.plateau: a plateau"):
    study_lib.parse(config)


def test_a_study_s_lr_figure_draws_the_effective_rate():
  run = {
    "arm": "a",
    "seed": 0,
    "schedule_config": {"name": "constant", "value": 0.1},
    "steps_per_epoch": 2,
    "total_steps": 6,
    "curves": {"epoch": [0, 1, 2], "plateau_scale": [1.0, 0.5, 0.25]},
  }
  x, lr = study_plot._lr_curve({"runs": [run]}, "a")
  np.testing.assert_allclose(x, np.arange(6) / 2)
  np.testing.assert_allclose(lr, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rtol=1e-6)
