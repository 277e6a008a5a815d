"""The one place where lrjax reads something JAX keeps private, with a fallback.

A private name may move between JAX releases; lrjax then loses a diagnostic, never a run.
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
