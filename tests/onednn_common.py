"""What the oneDNN tests share: the runtime this process set up, and two helpers."""

import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import pytest

from lrjax import runtime
from lrjax.onednn import build, conv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIMS = ("NHWC", "HWIO", "NHWC")
RUNTIME = runtime.setup()
ON = RUNTIME.convolutions == "onednn"
needs_onednn = pytest.mark.skipif(not ON, reason=RUNTIME.status())
ONEDNN = conv.Convolution(RUNTIME.threads, bf16=bool(getattr(build.load(), "bf16", False)))


def rel(a, b) -> float:
  """The largest difference, relative to the largest entry of `a`."""
  return float(jnp.max(jnp.abs(a - b)) / jnp.maximum(jnp.max(jnp.abs(a)), 1e-30))


def python(code: str, **env) -> subprocess.CompletedProcess:
  """`code` run by a fresh Python, at the checkout's root, with `env` added."""
  return subprocess.run(
    [sys.executable, "-c", textwrap.dedent(code)],
    env={**os.environ, "PYTHONPATH": ROOT, **env},
    capture_output=True,
    text=True,
    timeout=600,
    cwd=ROOT,
  )
