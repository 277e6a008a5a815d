"""Where a train step's time goes: its convolutions, timed one by one, against the whole step.

Every `conv_general_dilated` in the jaxpr of lrjax's train step (forward, input gradient and
weight gradient) is compiled and timed alone with inputs of its shapes; their sum is the step's
convolution time, and the rest is everything else (batch norm, activations, the loss, the
optimizer, the host). Measured side by side in one process, on XLA's convolutions (the config's
`runtime.convolutions` set to "xla"; `benchmarks/onednn_layers.py` measures oneDNN's).
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
from timing import build_run, median_ms
from training import step_time


def _convs(jaxpr) -> list:
  out = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "conv_general_dilated":
      out.append(eqn)
    for v in eqn.params.values():
      for sub in v if isinstance(v, (list, tuple)) else [v]:
        inner = getattr(sub, "jaxpr", sub)
        if isinstance(inner, jax.extend.core.Jaxpr):
          out += _convs(inner)
  return out


def profile(config, n: int = 5) -> dict:
  """Step time and the time of each of its convolutions, for `config`'s model and batch."""
  config = copy.deepcopy(config)
  config.runtime.convolutions = "xla"
  run = build_run(config)
  state = run.init_state()
  batch = run.train_batch(np.arange(config.batch_size), 0)
  jaxpr = run.train_step.trace(state, batch, run.schedule).jaxpr

  step_ms = step_time(run, state, batch, run.schedule, n)[0] * 1e3
  convs, rng = [], np.random.default_rng(0)
  for eqn in _convs(jaxpr.jaxpr):
    lhs, rhs = (v.aval for v in eqn.invars)
    params = dict(eqn.params)
    f = jax.jit(
      lambda a, b, p=params: jax.lax.conv_general_dilated_p.bind(a, b, **p),
      compiler_options=run.runtime.compiler_options(),
    )
    a = jnp.asarray(rng.standard_normal(lhs.shape), lhs.dtype)
    b = jnp.asarray(rng.standard_normal(rhs.shape), rhs.dtype)
    convs.append({"lhs": list(lhs.shape), "rhs": list(rhs.shape), "ms": median_ms(f, a, b, n=n)})
  conv_ms = sum(c["ms"] for c in convs)
  return {
    "model": config.model,
    "batch_size": config.batch_size,
    "step_ms": step_ms,
    "convolutions": len(convs),
    "convolution_ms": conv_ms,
    "convolution_share": conv_ms / step_ms,
    "slowest": sorted(convs, key=lambda c: -c["ms"])[:5],
  }
