"""``nnx.map``: a copy of a module with every state leaf mapped."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest

import nnx


class Model(nnx.Module):
    def __init__(self) -> None:
        self.linear = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        self.shared = self.linear.kernel  # the same cell at two paths
        self.buf = jnp.ones(2)


def test_map_sees_cells_and_paths_and_keeps_kinds() -> None:
    m = Model()
    seen: list[tuple[Any, str]] = []

    def zero(path: tuple[Any, ...], leaf: Any) -> Any:
        seen.append((path, type(leaf).__name__))
        return jnp.zeros_like(leaf)

    z = nnx.map(zero, m)
    assert sorted(seen) == [(("buf",), "ArrayImpl"), (("linear", "bias"), "Param"), (("linear", "kernel"), "Param")]
    assert isinstance(z.linear.kernel, nnx.Param) and z.shared is z.linear.kernel
    np.testing.assert_array_equal(z.linear.kernel.value, np.zeros((2, 3)))
    np.testing.assert_array_equal(z.buf, np.zeros(2))
    assert not np.allclose(m.linear.kernel.value, 0.0)  # the original is untouched


def test_map_takes_returned_cells_values_and_variables() -> None:
    m = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    twice = nnx.map(lambda p, v: v.replace(v.value * 2), m)
    np.testing.assert_allclose(twice.kernel.value, m.kernel.value * 2)
    v = nnx.Param(jnp.ones(2))
    tripled = nnx.map(lambda p, x: x.value * 3, v)
    assert isinstance(tripled, nnx.Param) and tripled is not v
    np.testing.assert_array_equal(tripled.value, [3.0, 3.0])


def test_map_rejects_a_changed_shape() -> None:
    m = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError):
        nnx.map(lambda p, v: jnp.zeros((7,)), m)
