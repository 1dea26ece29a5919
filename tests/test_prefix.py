"""``nnx.prefix``: one value per state leaf, chosen by filters, usable as a
transform's per-leaf spec (vmap axes, jit shardings)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.sharding import Mesh, NamedSharding

import nnx
from nnx.jaxapi import default_device, partition_spec


class Foo(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.w = nnx.Param(rngs.normal((4, 2, 3)))
        self.count = nnx.BatchStat(jnp.ones((3,)))


def test_mapping_rules_give_a_state_with_the_module_paths() -> None:
    model = nnx.Sequential(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), nnx.BatchNorm(3, rngs=nnx.Rngs(0)))
    result = nnx.prefix(model, {nnx.Param: "params", nnx.BatchStat: "batch_stats"})
    assert isinstance(result, nnx.State)
    assert result.paths == nnx.state(model).paths
    flat = dict(zip(result.paths, result.leaves))
    assert flat[("layers", 0, "kernel")] == "params"
    assert flat[("layers", 1, "mean")] == "batch_stats"
    assert result["layers"][0]["bias"] == "params"


def test_first_matching_filter_wins_and_unmatched_leaves_raise() -> None:
    model = Foo(nnx.Rngs(0))
    result = nnx.prefix(model, {nnx.Param: 0, ...: None})
    assert result["w"] == 0 and result["count"] is None
    with pytest.raises(ValueError, match="No filter matched the leaf at 'w' \\(Param\\)"):
        nnx.prefix(model, {nnx.BatchStat: 0})


def test_callable_rules_see_path_and_cell() -> None:
    model = Foo(nnx.Rngs(0))
    seen: list[tuple[Any, ...]] = []

    def rule(path: tuple[Any, ...], leaf: Any) -> str:
        seen.append(path)
        return "stat" if isinstance(leaf, nnx.BatchStat) else "param"

    result = nnx.prefix(model, rule)
    assert result["w"] == "param" and result["count"] == "stat"
    assert sorted(seen) == [("count",), ("w",)]


def test_variables_and_pytrees() -> None:
    v = nnx.Param(jnp.ones((4, 2)))
    assert nnx.prefix(v, {nnx.Param: 1}) == 1
    model = Foo(nnx.Rngs(0))
    a, b = nnx.prefix((model, v), {...: 0})
    assert isinstance(a, nnx.State) and b == 0


def test_prefix_as_vmap_axes() -> None:
    model = Foo(nnx.Rngs(0))
    x = jnp.ones((2,))
    axes = nnx.prefix(model, {nnx.Param: 0, ...: None})

    @nnx.vmap(in_axes=(axes, None), out_axes=0)
    def forward(m: Foo, x: jax.Array) -> jax.Array:
        return x @ m.w.value + m.count.value

    y = forward(model, x)
    np.testing.assert_allclose(y, np.einsum("i,nij->nj", np.asarray(x), np.asarray(model.w.value)) + 1.0, rtol=1e-6)


def test_prefix_of_an_aliased_module_twice() -> None:
    model = Foo(nnx.Rngs(0))
    a1, a2 = nnx.prefix((model, model), {nnx.Param: 0, ...: None})

    @nnx.vmap(in_axes=(a1, a2, None), out_axes=0)
    def forward(m1: Foo, m2: Foo, x: jax.Array) -> jax.Array:
        assert m1 is m2
        return x @ m1.w.value

    assert forward(model, model, jnp.ones((2,))).shape == (4, 3)


def test_vmap_rejects_a_state_of_axes_built_for_another_module() -> None:
    model = Foo(nnx.Rngs(0))
    wrong = nnx.prefix(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), {...: 0})
    before = np.asarray(model.w)
    def read(m: Foo) -> jax.Array:
        return m.w.value

    with pytest.raises(ValueError, match="has no entry for its state at 'count'"):
        nnx.vmap(read, in_axes=(wrong,))(model)
    np.testing.assert_array_equal(model.w, before)


def test_rng_streams_broadcast_by_a_prefix_are_not_forked() -> None:
    rngs = nnx.Rngs(0)
    axes = nnx.prefix(rngs, {...: None})

    @nnx.vmap(in_axes=(axes, 0), out_axes=0)
    def draw(r: nnx.Rngs, x: jax.Array) -> jax.Array:
        return jax.random.key_data(r()) + 0 * x.astype(jnp.uint32)

    keys = np.asarray(draw(rngs, jnp.zeros((3, 2))))
    assert (keys == keys[0]).all()  # every member drew the same key: the stream was broadcast


def test_prefix_as_jit_in_shardings() -> None:
    mesh = Mesh(np.array([default_device()]), ("x",))
    replicated = NamedSharding(mesh, partition_spec())
    model = Foo(nnx.Rngs(0))
    shardings = nnx.prefix(model, {...: replicated})

    @nnx.jit(in_shardings=(shardings,))
    def total(m: Foo) -> jax.Array:
        return m.w.value.sum() + m.count.value.sum()

    np.testing.assert_allclose(total(model), np.asarray(model.w).sum() + 3.0, rtol=1e-5)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from(["p", "b"]), min_size=1, max_size=5))
def test_every_leaf_gets_the_value_of_its_kind(kinds: list[str]) -> None:
    layers = nnx.List([nnx.Param(jnp.zeros(1)) if k == "p" else nnx.BatchStat(jnp.zeros(1)) for k in kinds])
    result = nnx.prefix(layers, {nnx.Param: "P", nnx.BatchStat: "B"})
    assert list(result.leaves) == [k.upper() for k in kinds]
    assert result.paths == nnx.state(layers).paths
