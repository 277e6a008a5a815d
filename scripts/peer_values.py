"""Records the peer libraries' values that the parity tests compare with (see scripts/peers).

    python scripts/peer_values.py [module ...]

Runs `main()` of every module in scripts/peers (or of the ones named), each writing
`tests/data/peers/<module>.json`. Needs the peers installed: torch, timm, transformers, keras,
optax.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers

SKIP = {"common"}


def main(names: list[str]) -> None:
  found = sorted(m.name for m in pkgutil.iter_modules(peers.__path__) if m.name not in SKIP)
  unknown = sorted(set(names) - set(found))
  if unknown:
    raise SystemExit(f"unknown module {unknown[0]!r}; modules: {', '.join(found)}")
  for name in names or found:
    importlib.import_module(f"peers.{name}").main()


if __name__ == "__main__":
  main(sys.argv[1:])
