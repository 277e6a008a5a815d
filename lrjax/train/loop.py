"""The host loop: data order, checkpoints, evaluation and records around the jitted steps.

Everything a run produces lives in its workdir: `config.json` (the resolved config),
`metrics.jsonl` (one record per epoch), `tb/` (TensorBoard events), `checkpoints/`, and
`summary.json` when it ends. A workdir that holds a checkpoint resumes from it with the same
data order and schedule position, so an interrupted run ends where an uninterrupted one would.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.train import checkpoint as ckpt_lib
from lrjax.train import data as data_lib
from lrjax.train import devices, models, settings, snapshots, xla_cpu
from lrjax.train import step as step_lib
from lrjax.train.progress import Progress
from lrjax.train.resolve import resolve_schedule

# The runs of a study share their dataset: read (and un-gzip) it once per process.
_load_dataset = functools.lru_cache(maxsize=2)(data_lib.load_dataset)


class NonFiniteLossError(RuntimeError):
  """The training loss became NaN or infinite; the last good checkpoint is kept.

  `step` and `lr` are the update whose loss was not finite and its learning rate.
  """

  def __init__(self, message: str, step: int = -1, lr: float = math.nan):
    super().__init__(message)
    self.step, self.lr = step, lr


def _jsonable(x: Any) -> Any:
  if isinstance(x, dict):
    return {k: _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, (np.generic, np.ndarray)):
    return x.tolist()
  return x


class Run:
  """One training run, set up and validated before anything compiles."""

  def __init__(self, config: Any, workdir: str):
    settings.check_config(config)
    self.config, self.workdir = config, workdir
    self.is_main = jax.process_index() == 0
    self.placement = devices.make_placement()
    settings.check_devices(config, self.placement.num_devices)
    self.ds = _load_dataset(config.dataset, config.data_dir or None)
    n = len(self.ds.train_labels)
    self.num_train = min(n, config.train_limit) if config.train_limit else n
    self.steps_per_epoch = self.num_train // config.batch_size
    if self.steps_per_epoch < 1:
      raise ValueError(
        f"config.batch_size={config.batch_size} is larger than the {self.num_train} "
        "training examples"
      )
    self.total_steps = self.steps_per_epoch * config.num_epochs
    self.schedule = resolve_schedule(config.schedule, self.steps_per_epoch, self.total_steps)
    dtype = jnp.bfloat16 if config.half_precision else jnp.float32
    self.model = models.create_model(
      config.model, self.ds.num_classes, dtype=dtype, stem=config.stem
    )
    self.tx = step_lib.make_optimizer(
      config.optimizer,
      momentum=config.momentum,
      nesterov=config.nesterov,
      weight_decay=config.weight_decay,
    )
    mean, std = tuple(np.asarray(self.ds.mean).tolist()), tuple(np.asarray(self.ds.std).tolist())
    self.train_step, self.eval_step = step_lib.jit_steps(
      self.model,
      mean,
      std,
      config.augment,
      config.pad,
      config.flip,
      self.placement.replicated,
      self.placement.batch,
    )
    self.eval_batch = settings.round_up(config.eval_batch_size, self.placement.num_devices)
    self.snapshot_epochs = (
      snapshots.cycle_end_epochs(self.schedule, self.steps_per_epoch, self.total_steps)
      if config.get("snapshot_ensemble", False)
      else []
    )
    self._predict = jax.jit(
      functools.partial(
        step_lib.predict_probs, model=self.model, mean=np.float32(mean), std=np.float32(std)
      ),
      in_shardings=(self.placement.replicated, self.placement.batch),
      out_shardings=self.placement.replicated,
      compiler_options=xla_cpu.compiler_options(),
    )

  def init_state(self) -> step_lib.TrainState:
    state = step_lib.create_train_state(
      self.model, self.tx, self.ds.train_images.shape[1:], self.config.seed
    )
    return self.placement.put_replicated(state)

  def train_batch(self, perm: np.ndarray, i: int) -> dict[str, jax.Array]:
    idx = np.sort(perm[i * self.config.batch_size : (i + 1) * self.config.batch_size])
    return self.placement.put_batch(
      {"image": self.ds.train_images[idx], "label": self.ds.train_labels[idx]}
    )

  def _test_batches(self):
    """The test set in padded batches; `mask` marks the real rows."""
    images, labels = self.ds.test_images, self.ds.test_labels
    for start in range(0, len(labels), self.eval_batch):
      img, lab = images[start : start + self.eval_batch], labels[start : start + self.eval_batch]
      pad = self.eval_batch - len(lab)
      mask = np.concatenate([np.ones(len(lab), np.float32), np.zeros(pad, np.float32)])
      if pad:
        img = np.concatenate([img, np.zeros((pad, *img.shape[1:]), img.dtype)])
        lab = np.concatenate([lab, np.zeros(pad, lab.dtype)])
      yield self.placement.put_batch({"image": img, "label": lab, "mask": mask}), len(lab)

  def predict(self, state: step_lib.TrainState) -> np.ndarray:
    """Test-set softmax probabilities, [num_test, num_classes]."""
    out = [
      np.asarray(self._predict(state, batch["image"]))[:n] for batch, n in self._test_batches()
    ]
    return np.concatenate(out)

  def evaluate(self, state: step_lib.TrainState) -> dict[str, float]:
    sums = [self.eval_step(state, batch) for batch, _ in self._test_batches()]
    total = jax.device_get(jax.tree.map(lambda *x: sum(x), *sums))
    count = float(total["count"])
    return {
      "test_loss": float(total["loss_sum"]) / count,
      "test_accuracy": float(total["correct"]) / count,
    }

  def _write_config(self) -> None:
    resolved = {
      "config": self.config.to_dict(),
      "schedule": self.schedule.to_config(),
      "steps_per_epoch": self.steps_per_epoch,
      "total_steps": self.total_steps,
      "num_train": self.num_train,
      "devices": self.placement.num_devices,
      "processes": jax.process_count(),
      "params": models.count_params(self.init_params_shape()),
    }
    with open(os.path.join(self.workdir, "config.json"), "w") as f:
      json.dump(_jsonable(resolved), f, indent=2)

  def init_params_shape(self) -> Any:
    return jax.eval_shape(
      lambda: self.model.init(
        jax.random.PRNGKey(0), jnp.zeros((1, *self.ds.train_images.shape[1:])), train=False
      )
    )["params"]


def _read_records(path: str, before_epoch: float) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    records = [json.loads(line) for line in f if line.strip()]
  return [r for r in records if r["epoch"] < before_epoch]


def train_and_evaluate(config: Any, workdir: str, *, quiet: bool = False) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint) and returns the summary."""
  os.makedirs(workdir, exist_ok=True)
  run = Run(config, workdir)
  compiled_before = run.train_step._cache_size()
  spe, cfg = run.steps_per_epoch, config
  state = run.init_state()
  checkpoints = ckpt_lib.Checkpoints(workdir, keep=cfg.keep_checkpoints)
  start_step, partial = 0, {"loss_sum": 0.0, "correct_sum": 0.0, "seconds": 0.0}
  if checkpoints.latest_step() is not None:
    items, meta = checkpoints.restore(state.checkpoint_items())
    state = state.replace(**items)
    start_step, partial = int(meta["step"]), meta["partial"]
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  records = _read_records(metrics_path, start_step // spe)
  if run.is_main:
    run._write_config()
    with open(metrics_path, "w") as f:  # drops records of epochs the resumed run will redo
      f.writelines(json.dumps(r) + "\n" for r in records)
  writer = _tensorboard(workdir) if run.is_main and cfg.tensorboard else None
  progress = Progress(cfg.num_epochs, spe, enabled=cfg.progress and run.is_main and not quiet)
  try:
    for epoch in range(start_step // spe, cfg.num_epochs):
      record, state, partial = _train_epoch(
        run, state, epoch, start_step, partial, checkpoints, progress
      )
      record.update(run.evaluate(state))
      records.append(record)
      if run.is_main:
        with open(metrics_path, "a") as f:
          f.write(json.dumps(record) + "\n")
        if writer is not None:
          for k, v in record.items():
            if k not in ("epoch", "step"):
              writer.add_scalar(k, v, record["step"])
          writer.flush()
      progress.epoch_done(record)
      if epoch in run.snapshot_epochs:
        probs = run.predict(state)
        if run.is_main:
          snapshots.save_snapshot(workdir, epoch, probs)
      if (epoch + 1) % cfg.checkpoint_every_epochs == 0 or epoch + 1 == cfg.num_epochs:
        checkpoints.save(
          (epoch + 1) * spe,
          state.checkpoint_items(),
          {"step": (epoch + 1) * spe, "partial": partial},
        )
      start_step = (epoch + 1) * spe
  finally:
    checkpoints.close()
    if writer is not None:
      writer.close()
  summary = _summary(records, run)
  summary["params_sha256"] = _digest(state.params)
  if run.snapshot_epochs:
    summary["snapshot_ensemble"] = snapshots.ensemble_report(workdir, run.ds.test_labels)
  if run.is_main:
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2)
  # One compilation serves every epoch and every schedule value (a test holds this).
  compilations = run.train_step._cache_size() - compiled_before
  return {**summary, "state": state, "compilations": compilations, "run": run}


def _train_epoch(
  run: Run, state, epoch: int, start_step: int, partial: dict, checkpoints, progress: Progress
):
  cfg, spe = run.config, run.steps_per_epoch
  perm = data_lib.epoch_permutation(cfg.seed, epoch, len(run.ds.train_labels))[: run.num_train]
  first = max(start_step - epoch * spe, 0)
  if first == 0:
    partial = {"loss_sum": 0.0, "correct_sum": 0.0, "seconds": 0.0}
  pending: list[tuple[int, dict]] = []
  t0 = time.perf_counter()
  for i in range(first, spe):
    state, m = run.train_step(state, run.train_batch(perm, i), run.schedule)
    pending.append((epoch * spe + i, m))
    last = i + 1 == spe
    mid_save = (
      cfg.checkpoint_every_steps and (epoch * spe + i + 1) % cfg.checkpoint_every_steps == 0
    )
    if last or mid_save or (i + 1) % cfg.log_every_steps == 0:
      partial = _absorb(pending, partial)  # the only host sync: every log_every_steps steps
      pending = []
      progress.update(epoch, i + 1, partial, time.perf_counter() - t0, cfg.batch_size)
    if mid_save and not last:
      checkpoints.save(
        epoch * spe + i + 1,
        state.checkpoint_items(),
        {
          "step": epoch * spe + i + 1,
          "partial": {**partial, "seconds": partial["seconds"] + time.perf_counter() - t0},
        },
      )
  seconds = partial["seconds"] + time.perf_counter() - t0
  steps_done = spe
  record = {
    "epoch": epoch,
    "step": (epoch + 1) * spe,
    "lr": float(run.schedule(epoch * spe)),
    "train_loss": partial["loss_sum"] / steps_done,
    "train_accuracy": partial["correct_sum"] / steps_done,
    "seconds": seconds,
    "images_per_second": (spe - first) * cfg.batch_size / max(time.perf_counter() - t0, 1e-9),
  }
  return record, state, {**partial, "seconds": 0.0}


def _absorb(pending: list[tuple[int, dict]], partial: dict) -> dict:
  steps = [s for s, _ in pending]
  got = jax.device_get([m for _, m in pending])
  for s, m in zip(steps, got):
    if not np.isfinite(m["loss"]):
      raise NonFiniteLossError(
        f"the training loss became {float(m['loss'])} at step {s} (learning rate "
        f"{float(m['lr']):.6g}); the run stopped and its last checkpoint is intact. "
        "Lower the learning rate or check the schedule.",
        step=s,
        lr=float(m["lr"]),
      )
  return {
    "loss_sum": partial["loss_sum"] + float(sum(m["loss"] for m in got)),
    "correct_sum": partial["correct_sum"] + float(sum(m["accuracy"] for m in got)),
    "seconds": partial["seconds"],
    "last_loss": float(got[-1]["loss"]) if got else partial.get("last_loss", float("nan")),
    "last_lr": float(got[-1]["lr"]) if got else partial.get("last_lr", float("nan")),
  }


def write_diverged_summary(out: str, step: int, lr: float, message: str) -> dict[str, Any]:
  """Ends a run whose loss became non-finite: its summary says so and keeps its earlier epochs.

  For a study a diverged schedule is a result, not a reason to stop: the run counts as finished
  (a resumed study skips it; delete its folder to try again), and the report lists it instead of
  averaging it in.
  """
  records = _read_records(os.path.join(out, "metrics.jsonl"), before_epoch=math.inf)
  summary = {
    "epochs": len(records),
    "final_test_accuracy": None,
    "final_test_loss": None,
    "best_test_accuracy": max((r["test_accuracy"] for r in records), default=None),
    "final_train_loss": None,
    "seconds": sum(r["seconds"] for r in records),
    "diverged": {"step": int(step), "lr": float(lr), "message": message},
  }
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary


def _summary(records: list[dict], run: Run) -> dict[str, Any]:
  if not records:
    return {"epochs": 0}
  best = max(records, key=lambda r: r["test_accuracy"])
  last = records[-1]
  return {
    "epochs": len(records),
    "steps": last["step"],
    "final_test_accuracy": last["test_accuracy"],
    "final_test_loss": last["test_loss"],
    "best_test_accuracy": best["test_accuracy"],
    "best_epoch": best["epoch"],
    "final_train_loss": last["train_loss"],
    "seconds": sum(r["seconds"] for r in records),
    "schedule": run.schedule.to_config(),
  }


def _digest(params: Any) -> str:
  """A hash of the final parameters' bytes: equal hashes mean bitwise-equal runs."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(params)):
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()


def _tensorboard(workdir: str):
  try:
    from tensorboardX import SummaryWriter
  except ImportError:
    return None
  return SummaryWriter(os.path.join(workdir, "tb"))
