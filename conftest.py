"""Doctests in the library see `lrjax`, `jnp` and `np`, as a reader of the docstrings would."""

import jax.numpy as jnp
import numpy as np
import pytest

import lrjax


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
  doctest_namespace.update(lrjax=lrjax, jnp=jnp, np=np)
