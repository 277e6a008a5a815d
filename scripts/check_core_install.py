"""Checks a core install (`pip install lrjax`, no extras): the schedules work, nothing else came.

    python scripts/check_core_install.py

Run from outside the source tree (CI runs it in a fresh virtual environment), so that `import
lrjax` finds the installed package. Every registered schedule is evaluated under jit and vmap,
one drives `optax.inject_hyperparams`, and the extras' packages must not be importable. Exits 0
and prints one line when all holds; raises otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lrjax

# Packages of the extras (scipy is not among them: jax itself depends on it).
NOT_INSTALLED = ("flax", "tensorflow_datasets", "matplotlib", "ml_collections", "orbax")


def check_schedules() -> int:
  steps = jnp.arange(0, 120, 7)
  for name, entry in sorted(lrjax.registry().items()):
    schedule = entry.factory(**entry.example)
    jitted = np.asarray(jax.jit(lambda s, t: s(t))(schedule, steps))
    mapped = np.asarray(jax.vmap(schedule)(steps))
    if not (np.all(np.isfinite(jitted)) and np.allclose(jitted, mapped, rtol=1e-6, atol=0)):
      raise AssertionError(f"{name}: jit {jitted} and vmap {mapped} disagree or are not finite")
  return len(lrjax.registry())


def check_optax() -> None:
  schedule = lrjax.warmup(lrjax.cosine_decay(0.1, decay_steps=90), warmup_steps=10)
  opt = optax.inject_hyperparams(optax.sgd)(learning_rate=schedule, momentum=0.9)
  params = {"w": jnp.ones(3)}
  state = opt.init(params)

  @jax.jit
  def step(params, state):
    updates, state = opt.update({"w": jnp.ones(3)}, state, params)
    return optax.apply_updates(params, updates), state

  for _ in range(12):
    params, state = step(params, state)
  lr = float(state.hyperparams["learning_rate"])
  if not np.isclose(lr, float(schedule(11)), rtol=1e-6):
    raise AssertionError(f"inject_hyperparams holds lr {lr}, the schedule says {schedule(11)}")


def check_extras_absent() -> None:
  present = [m for m in NOT_INSTALLED if importlib.util.find_spec(m) is not None]
  if present:
    raise AssertionError(f"a core install must not bring {present}")


def check_cli_names_the_extra() -> None:
  proc = subprocess.run(
    [sys.executable, "-m", "lrjax", "train", "--help"], capture_output=True, text=True, timeout=120
  )
  if proc.returncode != 1 or "pip install 'lrjax[train]'" not in proc.stderr:
    raise AssertionError(f"lrjax train without [train]: {proc.returncode} {proc.stderr!r}")


def main() -> None:
  source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  if os.path.dirname(os.path.dirname(os.path.abspath(lrjax.__file__))) == source:
    raise AssertionError("lrjax was imported from the source tree, not from the install")
  count = check_schedules()
  check_optax()
  check_extras_absent()
  check_cli_names_the_extra()
  print(f"core install ok: {count} schedules under jit and vmap, optax, no extras")


if __name__ == "__main__":
  main()
