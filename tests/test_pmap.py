"""nnx.pmap on one device (on eight: tests/multidevice/test_shard_map.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(3, 4, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, deterministic=False, rngs=rngs)
        self.calls = nnx.BatchStat(jnp.array(0))

    def __call__(self, x: jax.Array) -> jax.Array:
        self.calls.value = self.calls.value + 1
        return self.dropout(self.linear(x))


def test_create_and_run_with_state_and_rng_updates() -> None:
    @nnx.pmap(axis_size=1)
    def create(rngs: nnx.Rngs) -> Block:
        return Block(rngs)

    m = create(nnx.Rngs(0))
    assert m.linear.kernel.value.shape == (1, 3, 4)

    @nnx.pmap(in_axes=(nnx.StateAxes({nnx.BatchStat: None, ...: 0}), 0))
    def forward(m: Block, x: jax.Array) -> jax.Array:
        return m(x)

    x = jnp.ones((1, 2, 3))
    y1, y2 = forward(m, x), forward(m, x)
    assert y1.shape == (1, 2, 4)
    assert not np.allclose(y1, y2)  # the dropout stream advanced between calls
    assert np.asarray(m.calls.value).tolist() == [2]  # created per device: one count per member


def test_bad_in_axes_raise_and_change_nothing() -> None:
    m = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    before = np.asarray(m.kernel.value)

    def apply(m: nnx.Linear, x: jax.Array) -> jax.Array:
        return m(x)

    with pytest.raises(ValueError, match="in_axes has 1 entries"):
        nnx.pmap(apply, in_axes=(0,))(m, jnp.ones((1, 2)))
    np.testing.assert_array_equal(m.kernel.value, before)
