"""nnx.shard_map and nnx.StateSharding on one device (8 devices: tests/multidevice/test_shard_map.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding

import nnx
from nnx.jaxapi import default_device, partition_spec as P


def mesh() -> Mesh:
    return Mesh(np.array([default_device()]), ("a",))


def test_state_sharding_reads_like_state_axes_and_names_unmatched_leaves() -> None:
    specs = nnx.StateSharding({nnx.Param: P("a"), ...: P()})
    assert repr(specs).startswith("StateSharding({") and "P('a',)" in repr(specs)
    only_params = nnx.StateSharding({nnx.Param: P()})
    m = nnx.BatchNorm(3, rngs=nnx.Rngs(0))

    @nnx.shard_map(mesh=mesh(), in_specs=(only_params,), out_specs=P())
    def mean(m: nnx.BatchNorm) -> jax.Array:
        return m.mean.value.sum()

    with pytest.raises(ValueError, match=r"no filter of StateSharding.*matches the state at 'mean' \(BatchStat\)"):
        mean(m)


def test_shard_map_runs_and_lands_updates_on_one_device() -> None:
    m = nnx.Linear(2, 3, rngs=nnx.Rngs(0))

    @nnx.shard_map(mesh=mesh(), in_specs=(nnx.StateSharding({...: P()}), P("a")), out_specs=P("a"))
    def step(m: nnx.Linear, x: jax.Array) -> jax.Array:
        assert m.bias is not None
        m.bias.value = m.bias.value + 1
        return m(x)

    y = step(m, jnp.ones((4, 2)))
    assert y.shape == (4, 3)
    assert m.bias is not None
    np.testing.assert_allclose(m.bias.value, np.ones(3))


def test_jit_in_shardings_take_a_state_sharding() -> None:
    replicated = NamedSharding(mesh(), P())
    m = nnx.Linear(2, 3, rngs=nnx.Rngs(0))

    @nnx.jit(in_shardings=(nnx.StateSharding({nnx.Param: replicated}),))
    def total(m: nnx.Linear) -> jax.Array:
        return m.kernel.value.sum()

    np.testing.assert_allclose(total(m), np.asarray(m.kernel.value).sum(), rtol=1e-6)
