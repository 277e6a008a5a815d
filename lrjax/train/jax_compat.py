"""The two places where lrjax needs something JAX offers only privately, each with a fallback.

Private names may move between JAX releases; lrjax then loses a diagnostic, never a run.
"""

from __future__ import annotations

from typing import Any


def compiled_count(jitted: Any) -> int | None:
  """How many programs a `jax.jit` function has compiled (None where JAX does not say)."""
  size = getattr(jitted, "_cache_size", None)
  try:
    return int(size()) if callable(size) else None
  except Exception:  # a changed private API: the count is a diagnostic only
    return None


def backends_started() -> bool:
  """Whether JAX has started its backends (after which `XLA_FLAGS` is no longer read).

  Falls back to False, so a changed private API leads at worst to a flag that is not read.
  """
  try:
    from jax._src import xla_bridge

    return bool(xla_bridge.backends_are_initialized())
  except Exception:  # a changed private API
    return False
