"""Helpers for numerical-parity tests against Flax NNX (a test-only dependency).

nnx layers use Flax's attribute names (``kernel``, ``bias``, ``scale``, ``mean``,
``var``, ...), so the same path reaches the same weight in both; these
helpers copy weights from a Flax module into an nnx one and compare outputs.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest

import nnx
from nnx.filters import Key

fnnx: Any = pytest.importorskip("flax.nnx")  # in the `test` extra; a missing install is visible as skips


def flax_value(module: Any, path: tuple[Key, ...]) -> jax.Array:
    """The array at ``path`` of a Flax module (attributes, then list/dict indices)."""
    node = module
    for key in path:
        node = node[key] if isinstance(key, int) else getattr(node, key)
    value: jax.Array = node[...]
    return value


def copy_from_flax(ours: nnx.Module, theirs: Any) -> None:
    """Write every Param/BatchStat/Cache value of the Flax module ``theirs`` into ``ours``."""
    ours_state: nnx.State[Any] = nnx.state(ours, (nnx.Param, nnx.BatchStat, nnx.Cache))
    flat = {path: flax_value(theirs, path) for path in ours_state.paths}
    for path, value in flat.items():
        assert value.shape == ours_state.flat_state()[path].shape, path
    nnx.update(ours, nnx.State.from_flat_state(flat))


def assert_close(a: Any, b: Any, *, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Arrays equal to float32 tolerance."""
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol, rtol=rtol)
