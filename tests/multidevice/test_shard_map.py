# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false
# (jax's device and sharding APIs are partly unannotated; mypy --strict checks this file fully.)
"""nnx.shard_map and nnx.StateSharding on 8 CPU devices."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding

import nnx
from nnx.jaxapi import partition_spec as P


def mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("a",))


def test_state_sharding_gives_each_leaf_its_spec() -> None:
    specs = nnx.StateSharding({nnx.PathContains("kernel"): P(None, "a"), nnx.PathContains("bias"): P()})
    m = nnx.Linear(16, 32, rngs=nnx.Rngs(0))
    seen: list[tuple[int, ...]] = []

    @nnx.shard_map(mesh=mesh(), in_specs=(specs, P()), out_specs=P(None, "a"))
    def forward(m: nnx.Linear, x: jax.Array) -> jax.Array:
        assert m.bias is not None
        seen.append((*m.kernel.value.shape, *m.bias.value.shape))
        return x @ m.kernel.value

    x = jnp.ones((2, 16))
    y = forward(m, x)
    assert seen == [(16, 4, 32)]
    np.testing.assert_allclose(y, x @ m.kernel.value, rtol=1e-5)


def test_writes_come_back_with_the_leaf_spec() -> None:
    w = nnx.Param(jnp.ones((16, 32)))
    count = nnx.BatchStat(jnp.array(0))

    @nnx.shard_map(mesh=mesh(), in_specs=(P(None, "a"), P()), out_specs=P())
    def step(w: nnx.Param[jax.Array], count: nnx.BatchStat[jax.Array]) -> jax.Array:
        count.value = count.value + 1
        w.value = w.value * 2
        return jnp.zeros(())

    step(w, count)
    assert int(count.value) == 1
    np.testing.assert_allclose(w.value, np.full((16, 32), 2.0))
    assert isinstance(w.value.sharding, NamedSharding) and w.value.sharding.spec == P(None, "a")


def test_prefix_state_as_specs_and_bad_specs_change_nothing() -> None:
    m = nnx.Linear(16, 32, rngs=nnx.Rngs(0))
    specs = nnx.prefix(m, {nnx.PathContains("kernel"): P(None, "a"), ...: P()})

    @nnx.shard_map(mesh=mesh(), in_specs=(specs,), out_specs=P())
    def width(m: nnx.Linear) -> jax.Array:
        return m.kernel.value.shape[1] * jnp.ones(())

    assert float(width(m)) == 4.0
    before = np.asarray(m.kernel.value)
    with pytest.raises(ValueError, match="in_specs has 2 entries"):
        nnx.shard_map(width, mesh=mesh(), in_specs=(specs, P()), out_specs=P())(m)
    np.testing.assert_array_equal(m.kernel.value, before)


def test_jit_in_shardings_take_a_state_sharding() -> None:
    sharding = NamedSharding(mesh(), P(None, "a"))
    specs = nnx.StateSharding({nnx.PathContains("kernel"): sharding, ...: NamedSharding(mesh(), P())})
    m = nnx.Linear(16, 32, rngs=nnx.Rngs(0))

    @nnx.jit(in_shardings=(specs,))
    def total(m: nnx.Linear) -> jax.Array:
        assert m.bias is not None
        return m.kernel.value.sum() + m.bias.value.sum()

    np.testing.assert_allclose(total(m), np.asarray(m.kernel.value).sum(), rtol=1e-5)


def test_pmap_gives_each_device_its_own_member_and_keys() -> None:
    @nnx.pmap(axis_size=8)
    def create(rngs: nnx.Rngs) -> nnx.Linear:
        return nnx.Linear(2, 3, rngs=rngs)

    m = create(nnx.Rngs(0))
    kernels = np.asarray(m.kernel.value)
    assert kernels.shape == (8, 2, 3)
    assert len({k.tobytes() for k in kernels}) == 8

    @nnx.pmap(in_axes=(0, None), axis_name="d")
    def mean_out(m: nnx.Linear, x: jax.Array) -> jax.Array:
        return jax.lax.pmean(m(x), "d")  # type: ignore[no-untyped-call, no-any-return]  # jax: pmean is unannotated

    y = mean_out(m, jnp.ones((1, 2)))
    np.testing.assert_allclose(y[0], y[7], rtol=1e-6)
