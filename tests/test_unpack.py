"""``nnx.unpack`` and ``GraphState``: split's States with the GraphDef folded in."""

from __future__ import annotations

import random
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnx
from typed_jax import jit, tree_map
from test_properties import SETTINGS, Case, analyze, assert_same_graph, filter_asts, graphs, misplaced_everything, to_nnx


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.norm = nnx.BatchNorm(2, rngs=rngs)
        self.linear = nnx.Linear(2, 3, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.linear(self.norm(x))


def test_unpack_is_split_with_the_graphdef_attached() -> None:
    m = Block(nnx.Rngs(0))
    graphdef, params, stats = nnx.split(m, nnx.Param, nnx.BatchStat)
    gp, gs = nnx.unpack(m, nnx.Param, nnx.BatchStat)
    assert isinstance(gp, nnx.GraphState) and isinstance(gp, nnx.State)
    assert gp._graphdef == graphdef and gs._graphdef == graphdef
    assert gp == params and gs == stats
    assert gp.paths == params.paths
    assert set(gs["norm"]) == {"mean", "var"}


def test_unpack_with_no_or_one_filter_returns_one_graphstate() -> None:
    m = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    whole = nnx.unpack(m)
    assert isinstance(whole, nnx.GraphState)
    assert set(whole) == {"kernel", "bias"}
    assert isinstance(nnx.unpack(m, nnx.Param), nnx.GraphState)


def test_unpack_keeps_splits_filter_rules() -> None:
    m = Block(nnx.Rngs(0))
    with pytest.raises(ValueError):
        nnx.unpack(m, nnx.Param)  # the batch stats match no filter: as for nnx.split


def test_merge_of_graphstates_rebuilds_the_module() -> None:
    m = Block(nnx.Rngs(0))
    params, rest = nnx.unpack(m, nnx.Param, ...)
    rest2, params2 = rest, params  # merge tells the states apart by their paths
    for clone in (nnx.merge(params, rest), nnx.merge(rest2, params2)):
        assert type(clone) is Block and clone is not m
        np.testing.assert_array_equal(clone.linear.kernel, m.linear.kernel)
        assert nnx.state(clone) == nnx.state(m)


def test_sub_states_are_plain_and_write_through() -> None:
    m = Block(nnx.Rngs(0))
    gs = nnx.unpack(m)
    assert type(gs.linear) is nnx.State
    gs.linear.kernel = jnp.zeros((2, 3))
    gs["linear"]["bias"] = jnp.ones((3,))
    clone = nnx.merge(gs)
    np.testing.assert_array_equal(clone.linear.kernel, jnp.zeros((2, 3)))
    np.testing.assert_array_equal(clone.linear.bias, jnp.ones((3,)))
    assert type(gs._state) is nnx.State and gs._state == nnx.state(clone)


def test_update_takes_a_graphstate() -> None:
    m = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    gs = nnx.unpack(m)
    gs["kernel"] = jnp.zeros((2, 3))
    nnx.update(m, gs)
    np.testing.assert_array_equal(m.kernel, jnp.zeros((2, 3)))


def test_graphstate_is_a_pytree_with_the_states_key_paths() -> None:
    m = Block(nnx.Rngs(0))
    gs = nnx.unpack(m)
    mapped = tree_map(lambda x: x * 2, gs)  # pyright: ignore[reportUnknownLambdaType, reportUnknownArgumentType]  # leaves are Any
    assert isinstance(mapped, nnx.GraphState) and mapped._graphdef == gs._graphdef
    assert key_paths(gs) == key_paths(nnx.state(m))

    @jit  # the GraphDef is static: the jitted function sees only the leaves
    def total(g: nnx.GraphState[Block]) -> jax.Array:
        return jnp.sum(nnx.merge(g).linear.kernel[...])

    np.testing.assert_allclose(total(gs), jnp.sum(m.linear.kernel[...]))


def key_paths(tree: Any) -> list[str]:
    pairs: list[tuple[Any, Any]] = jax.tree_util.tree_flatten_with_path(tree)[0]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # jax: untyped key paths
    return [jax.tree_util.keystr(p) for p, _ in pairs]  # pyright: ignore[reportUnknownMemberType]


def test_grad_and_optimizer_take_graphstates() -> None:
    m = Block(nnx.Rngs(0))
    optimizer = nnx.Optimizer(m, optax.sgd(0.1), wrt=nnx.Param)
    params, rest = nnx.unpack(m, nnx.Param, ...)
    x, y = jax.random.normal(jax.random.key(1), (4, 2)), jnp.zeros((4, 3))

    def loss(params: nnx.GraphState[Block], rest: nnx.GraphState[Block]) -> jax.Array:
        return jnp.mean((nnx.merge(params, rest)(x) - y) ** 2)

    grads = cast("nnx.GraphState[Block]", jax.grad(loss)(params, rest))  # pyright: ignore[reportUnknownMemberType]  # jax: bare Callable
    assert type(grads) is type(params) and grads._graphdef == params._graphdef
    before = np.asarray(m.linear.kernel)
    optimizer.update(m, grads)
    assert not np.allclose(before, m.linear.kernel)


def test_merge_refuses_a_mix_of_graphstates_and_states() -> None:
    m = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    gs = nnx.unpack(m)
    with pytest.raises(ValueError, match="argument 2 is a State.*Expected GraphState"):
        nnx.merge(gs, nnx.state(m))  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]


def test_merge_refuses_graphstates_of_different_graphs() -> None:
    a = nnx.unpack(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    b = nnx.unpack(nnx.BatchNorm(2, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="GraphDef must be the same.*Linear.*BatchNorm"):
        nnx.merge(a, b)  # type: ignore[nnx-state-mismatch]


def test_merge_with_a_graphdef_alone_names_the_missing_state() -> None:
    graphdef = nnx.graphdef(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'state'"):
        nnx.merge(graphdef)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]


@SETTINGS
@given(case=graphs(), asts=st.lists(filter_asts, max_size=3), rnd=st.randoms(use_true_random=False))
def test_unpack_then_merge_round_trips_any_graph(case: Case, asts: list[tuple[Any, ...]], rnd: random.Random) -> None:
    """For random graphs (sharing, cycles, containers) and filters: the GraphStates are
    split's States, and merging them in any order rebuilds the same graph."""
    if misplaced_everything(asts):
        return  # split's own error, tested in test_properties
    filters = [to_nnx(a) for a in asts]
    before = analyze(case.root)
    graphdef, *states = nnx.split(case.root, *filters, ...)
    # One GraphState for a single filter (``...`` alone), else a tuple of them.
    packed = list(nnx.unpack(case.root, *filters, ...)) if filters else [nnx.unpack(case.root, ...)]
    assert [p._state for p in packed] == states
    assert all(p._graphdef == graphdef for p in packed)
    rnd.shuffle(packed)
    clone = nnx.merge(*packed)
    assert_same_graph(before, analyze(clone))
    assert nnx.graphdef(clone) == graphdef
