"""Doctests in the library see `lrjax`, `jnp` and `np`, as a reader of the docstrings would.

Every test process, and every process a test starts, shares one persistent compilation cache
(JAX's own, keyed by the program, the compiler options and the versions): the tests start many
short `lrjax` processes, and each would otherwise compile the same steps again. A compiled
program is the same program whichever process compiled it: the bits of a result follow the
runtime that runs it (tested: a cache filled at 2 threads gives 1-thread runs their own bits;
`tests/test_old_folders.py` compares with parameters written without a cache).
"""

import os
import tempfile

os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR",
  os.path.join(tempfile.gettempdir(), f"lrjax-tests-jax-cache-{os.getuid()}"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax.numpy as jnp
import numpy as np
import pytest

import lrjax


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
  doctest_namespace.update(lrjax=lrjax, jnp=jnp, np=np)
