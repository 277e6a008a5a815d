"""What the plateau transformation's tests share: the peers' record and a scan of its scales."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

RECORD = json.loads((Path(__file__).parent / "data" / "peers" / "plateau.json").read_text())
CASES = {c["id"]: c for c in RECORD["cases"]}


def cases(peer, tie=False):
  return [c for c in RECORD["cases"] if c["peer"] == peer and ("tie" in c["id"]) == tie]


def scales(tx, metrics, news=None, learning_rate=1.0):
  """Minus the updates of `sgd(learning_rate)` then `tx` for a gradient of 1, in one lax.scan:
  the scale per step times the learning rate."""
  chain = optax.chain(optax.sgd(learning_rate), tx)
  params = jnp.zeros(())
  metrics = jnp.asarray(metrics, jnp.float32)
  news = jnp.ones(metrics.shape, bool) if news is None else jnp.asarray(news, bool)

  def body(state, x):
    updates, state = chain.update(jnp.ones(()), state, params, value=x[0], value_is_new=x[1])
    return state, -updates

  run = jax.jit(lambda state, xs: jax.lax.scan(body, state, xs))
  return np.asarray(run(chain.init(params), (metrics, news))[1])
