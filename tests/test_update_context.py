"""``split_context`` / ``merge_context`` / ``update_context`` and ``to_tree`` / ``from_tree``:
several graphs split and merged as one, and a transform's changes landed on the caller's objects."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnx
from test_properties import SETTINGS, Case, analyze, assert_same_graph, graphs
from typed_jax import jit


class Foo(nnx.Module):
    def __init__(self) -> None:
        # Typed Any: the tests swap a cell and a plain array between the attributes.
        self.a: Any = nnx.Param(jnp.array(1))
        self.b: Any = jnp.array(2)


def test_a_node_split_twice_in_one_context_is_a_reference_to_its_first_description() -> None:
    m = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    with nnx.split_context() as ctx:
        g1, s1 = ctx.split(m)
        g2, s2 = ctx.split(m)
    assert len(s1.paths) == 2 and len(s2.paths) == 0
    with nnx.merge_context() as mctx:
        m1 = mctx.merge(g1, s1)
        m2 = mctx.merge(g2, s2)
    assert m1 is m2 and m1 is not m
    # Without a context, each merge builds its own copy.
    assert nnx.merge(g1, s1) is not nnx.merge(g1, s1)


def test_a_submodule_split_after_its_parent_comes_back_inside_it() -> None:
    inner = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    outer = nnx.Sequential(inner)
    with nnx.split_context() as ctx:
        g1, s1 = ctx.split(outer)
        g2, s2 = ctx.split(inner)
    assert len(s2.paths) == 0
    with nnx.merge_context() as mctx:
        o = mctx.merge(g1, s1)
        i = mctx.merge(g2, s2)
    assert i is o.layers[0]


def test_split_context_filters_like_split() -> None:
    m = nnx.BatchNorm(2, rngs=nnx.Rngs(0))
    with nnx.split_context() as ctx:
        g, params, stats = ctx.split(m, nnx.Param, nnx.BatchStat)
    assert set(params) == {"bias", "scale"} and set(stats) == {"mean", "var"}
    with nnx.merge_context() as mctx:
        back = mctx.merge(g, params, stats)
    assert type(back) is nnx.BatchNorm


def _round_trip(m: Foo, swap: bool) -> Foo:
    """The four steps of an update context around a jitted function."""
    with nnx.update_context("t"):
        with nnx.split_context("t") as ctx:
            g1, s1 = ctx.split(m)
            g2, s2 = ctx.split(m)

        @jit
        def f(g1: nnx.GraphDef[Foo], s1: nnx.State, g2: nnx.GraphDef[Foo], s2: nnx.State) -> tuple[Any, ...]:
            with nnx.merge_context("t", True) as mctx:
                m1 = mctx.merge(g1, s1)
                m2 = mctx.merge(g2, s2)
            assert m1 is m2
            if swap:
                m1.a, m1.b = m1.b, m1.a  # a structural change
            else:
                m1.a[...] += 10
            with nnx.split_context("t") as sctx:
                return (*sctx.split(m1), *sctx.split(m2))

        h1, t1, h2, t2 = f(g1, s1, g2, s2)
        with nnx.merge_context("t", False) as mctx:
            out1 = mctx.merge(h1, t1)
            out2 = mctx.merge(h2, t2)
    assert out1 is m and out2 is m
    return out1


def test_update_context_lands_value_changes_on_the_callers_object() -> None:
    m = Foo()
    cell = m.a
    _round_trip(m, swap=False)
    assert m.a is cell and int(m.a[...]) == 11
    _round_trip(m, swap=False)  # a second call hits jit's cache: the links travel in the GraphDef
    assert m.a is cell and int(m.a[...]) == 21


def test_update_context_lands_structural_changes_in_place() -> None:
    m = Foo()
    cell = m.a
    _round_trip(m, swap=True)
    assert m.b is cell and int(m.b[...]) == 1
    np.testing.assert_array_equal(m.a, 2)
    assert nnx.state(m).paths == (("a",), ("b",))  # the cached walk saw the change
    _round_trip(m, swap=True)
    assert m.a is cell and int(m.a[...]) == 1


def test_update_context_as_a_decorator_with_a_new_cycle() -> None:
    m1: nnx.Dict[str, Any] = nnx.Dict({})

    @jit
    def f(graphdef: nnx.GraphDef[Any], state: nnx.State) -> tuple[Any, ...]:
        with nnx.merge_context("example", True) as ctx:
            m2 = ctx.merge(graphdef, state)
        m2["a"] = jnp.array(1)
        m2["ref"] = m2  # a reference cycle made inside
        with nnx.split_context("example") as sctx:
            return sctx.split(m2)

    @nnx.update_context("example")
    def g(m: nnx.Dict[str, Any]) -> Any:
        with nnx.split_context("example") as ctx:
            graphdef, state = ctx.split(m)
        out = f(graphdef, state)
        with nnx.merge_context("example", False) as mctx:
            return mctx.merge(*out)

    assert g(m1) is m1
    assert m1["ref"] is m1 and int(m1["a"]) == 1


def test_contexts_refuse_missing_pieces() -> None:
    with pytest.raises(ValueError, match="No update context found for tag 'nope'"):
        nnx.current_update_context("nope")
    with nnx.update_context("t"):
        assert nnx.current_update_context("t").tag == "t"
        with pytest.raises(ValueError, match="needs inner="):
            with nnx.merge_context("t"):
                pass
        m = Foo()
        with nnx.split_context("t") as ctx:  # (1)
            g, s = ctx.split(m)
        with nnx.merge_context("t", True) as mctx:  # (2)
            inner = mctx.merge(g, s)
        with nnx.split_context("t") as ctx:  # (3)
            h, t = ctx.split(inner)
        with nnx.merge_context("t", False) as mctx:  # (4)
            assert mctx.merge(h, t) is m
        with pytest.raises(ValueError, match="no outer split_context"):
            with nnx.merge_context("t", False) as mctx:  # (4) again: nothing recorded to update
                mctx.merge(h, t)


def test_an_outer_merge_refuses_links_to_objects_it_never_split() -> None:
    with nnx.update_context("t"):
        with nnx.split_context("t"):  # an outer split of nothing
            pass
        with nnx.split_context() as ctx:  # a plain split, merged as if it were step (1)'s
            g, s = ctx.split(Foo())
        with nnx.merge_context("t", True) as mctx:
            inner = mctx.merge(g, s)
        with nnx.split_context("t") as sctx:
            h, t = sctx.split(inner)
        with pytest.raises(ValueError, match="did not split"):
            with nnx.merge_context("t", False) as mctx:
                mctx.merge(h, t)


def test_to_tree_and_from_tree_keep_sharing() -> None:
    m = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    pure = nnx.to_tree((m, 1, {"b": m}))
    first, second = pure[0], pure[2]["b"]
    assert isinstance(first, nnx.NodeStates) and isinstance(second, nnx.NodeStates)
    assert len(first.state.paths) == 2 and len(second.state.paths) == 0
    assert pure[1] == 1
    back = nnx.from_tree(pure)
    assert back[0] is back[2]["b"] and back[0] is not m


def test_to_tree_refuses_a_cell_mapped_two_ways() -> None:
    m = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    nnx.to_tree((m, 1, {"b": m}), prefix=(0, None, 0))
    with pytest.raises(ValueError, match=r"Inconsistent aliasing detected: the same Param .*prefix 0 .*prefix 1"):
        nnx.to_tree((m, 1, {"b": m}), prefix=(0, None, 1))


def test_to_tree_through_vmap_with_an_update_context() -> None:
    stacked = Foo()
    stacked.a = nnx.Param(jnp.arange(3))
    stacked.b = jnp.zeros(3)
    with nnx.update_context("v"):
        pure = nnx.to_tree((stacked,), ctxtag="v")

        def body(pure: Any) -> Any:
            (m,) = nnx.from_tree(pure, ctxtag="v", is_inner=True)
            m.a[...] = m.a[...] * 2
            return nnx.to_tree((m,), ctxtag="v")

        out = jax.vmap(body)(pure)
        (back,) = nnx.from_tree(out, ctxtag="v", is_inner=False)
    assert back is stacked
    np.testing.assert_array_equal(stacked.a[...], [0, 2, 4])


@SETTINGS
@given(case=graphs(), picks=st.lists(st.integers(0, 20), min_size=1, max_size=4))
def test_context_splits_of_any_nodes_merge_back_with_the_same_identities(case: Case, picks: list[int]) -> None:
    """Split the root, then some of its modules, in one context: merging them in one
    context rebuilds the root's graph, and each module merges to the node at its place."""
    roots: list[Any] = [case.root, *(case.mods[i % len(case.mods)] for i in picks)]
    before = analyze(case.root)
    reachable = set(before.objs)
    roots = [r for r in roots if id(r) in reachable]
    with nnx.split_context() as ctx:
        parts = [ctx.split(r) for r in roots]
    with nnx.merge_context() as mctx:
        built = [mctx.merge(*p) for p in parts]
    assert_same_graph(before, analyze(built[0]))
    for original, copy in zip(roots, built):
        for other, other_copy in zip(roots, built):
            assert (original is other) == (copy is other_copy)
    # each module merged to the very object at its place in the merged root
    after = analyze(built[0])
    at_path = {path: after.objs[i] for i, path in after.first.items()}
    for original, copy in zip(roots, built):
        assert at_path[before.first[id(original)]] is copy


def test_graphdef_nodes_lists_the_described_nodes_depth_first() -> None:
    linear = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    nodes = nnx.graphdef(nnx.Sequential(linear, linear)).nodes
    kinds = [type(n).__name__ for n in nodes]
    assert kinds == ["NodeDef", "NodeDef", "NodeDef", "VariableDef", "VariableDef", "NodeRef"]
    top, layers, first, _, kernel, again = nodes
    assert isinstance(top, nnx.graphlib.NodeDef) and top.type is nnx.Sequential and top.keys == ("layers",)
    assert isinstance(layers, nnx.graphlib.NodeDef) and layers.type is nnx.List and layers.keys == (0, 1)
    assert isinstance(first, nnx.graphlib.NodeDef) and first.type is nnx.Linear
    assert isinstance(kernel, nnx.graphlib.VariableDef) and kernel.type is nnx.Param
    assert again == nnx.graphlib.NodeRef(first.index)  # the second place holds the same Linear


class Stat(nnx.Module):
    def __init__(self) -> None:
        self.w = nnx.Param(jnp.array(1.0))
        self.s = nnx.BatchStat(jnp.arange(3.0))


def _by_kind(ctx: nnx.SplitContext, path: Any, prefix: Any, x: Any) -> nnx.NodeStates:
    return nnx.NodeStates.from_split(*ctx.split(x, nnx.Param, nnx.BatchStat))


def test_node_states_prefixes_give_each_part_its_own_vmap_axis() -> None:
    m = Stat()
    axes = (nnx.NodeStates.from_prefixes((None, 0)),)  # params broadcast, batch stats mapped
    with nnx.update_context("v"):
        pure = nnx.to_tree((m,), ctxtag="v", split_fn=_by_kind)

        def body(pure: Any) -> Any:
            (inner,) = nnx.from_tree(pure, ctxtag="v", is_inner=True)
            assert inner.s.shape == () and inner.w.shape == ()
            inner.s[...] = inner.s[...] + inner.w[...]
            return nnx.to_tree((inner,), ctxtag="v", split_fn=_by_kind)

        out = jax.vmap(body, in_axes=(axes,), out_axes=axes)(pure)
        (back,) = nnx.from_tree(out, ctxtag="v", is_inner=False)
    assert back is m
    np.testing.assert_array_equal(m.s[...], [1.0, 2.0, 3.0])
