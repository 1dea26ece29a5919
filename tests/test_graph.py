"""split / merge / update / state / pop / clone / iter_graph, and their errors."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx
from typed_jax import jit, tree_map, vmap

from nnx import epoch


class Linear(nnx.Module):
    w: jax.Array = nnx.param()
    b: jax.Array = nnx.param()

    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs) -> None:
        self.w = jax.random.normal(rngs.params(), (din, dout))
        self.b = jnp.zeros((dout,))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w + self.b


class Norm(nnx.Module):
    mean: jax.Array = nnx.batch_stat()

    def __init__(self, n: int) -> None:
        self.mean = jnp.zeros((n,))
        self.scale = nnx.Param(jnp.ones((n,)))


class Block(nnx.Module):
    parent: nnx.Module  # set by Model: a cycle

    def __init__(self, linear: Linear) -> None:
        self.linear = linear
        self.norm = Norm(2)


class Model(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        shared = Linear(2, 2, rngs=rngs)
        self.block1 = Block(shared)
        self.block2 = Block(shared)
        self.block2.parent = self  # a cycle


def test_shared_state_appears_once_and_comes_back_shared() -> None:
    m = Model(nnx.Rngs(0))
    g, s = nnx.split(m)
    assert ("block1", "linear", "w") in s.paths
    assert not any(p[:2] == ("block2", "linear") for p in s.paths)
    m2 = nnx.merge(g, s)
    assert m2.block1.linear is m2.block2.linear
    assert m2.block2.parent is m2
    assert nnx.cell(m2.block1.linear, "w") is not nnx.cell(m.block1.linear, "w")


def test_graphdef_is_hashable_and_equal_across_identical_models() -> None:
    g1 = nnx.graphdef(Model(nnx.Rngs(0)))
    g2 = nnx.graphdef(Model(nnx.Rngs(1)))
    assert g1 == g2 and hash(g1) == hash(g2)
    assert len({g1, g2}) == 1
    # it is a static pytree: jax transforms can return it
    def with_graphdef(x: jax.Array) -> tuple[jax.Array, nnx.GraphDef[Model]]:
        return x, g1

    out = jit(with_graphdef)(jnp.asarray(1.0))[1]
    assert out == g1


def test_split_by_filters_and_unmatched_error_names_the_path() -> None:
    m = Model(nnx.Rngs(0))
    g, params, stats = nnx.split(m, nnx.Param, nnx.BatchStat)
    assert all(params.kind(p) is nnx.Param for p in params.paths)
    assert ("block1", "norm", "mean") in stats.paths
    with pytest.raises(ValueError, match=r"leave 'block1.norm.mean' \(BatchStat\) unmatched.*`\.\.\.`"):
        nnx.split(m, nnx.Param)  # type: ignore[nnx-split-unmatched]  # the run-time error under test
    g, params, rest = nnx.split(m, nnx.Param, ...)
    m2 = nnx.merge(g, params, rest)
    np.testing.assert_allclose(m2.block1.linear.w, m.block1.linear.w)


def test_merge_with_wrong_structure_names_missing_and_unexpected_paths() -> None:
    m = Model(nnx.Rngs(0))
    g, params, stats = nnx.split(m, nnx.Param, nnx.BatchStat)
    with pytest.raises(ValueError, match=r"missing paths \['block1.norm.mean', 'block2.norm.mean'\]"):
        nnx.merge(g, params)
    other: nnx.State[Model] = nnx.State({"nope": jnp.zeros(1)})
    with pytest.raises(ValueError, match=r"unexpected paths \['nope'\]"):
        nnx.merge(g, params, stats, other)


def test_update_writes_in_place_and_shared_holders_see_it() -> None:
    m = Model(nnx.Rngs(0))
    cell = nnx.cell(m.block1.linear, "w")
    params = nnx.state(m, nnx.Param)
    nnx.update(m, jax.tree.map(jnp.zeros_like, params))
    assert nnx.cell(m.block1.linear, "w") is cell
    np.testing.assert_allclose(m.block2.linear.w, 0.0)


def test_update_errors_change_nothing() -> None:
    m = Model(nnx.Rngs(0))
    before = np.asarray(m.block1.linear.w)
    bad_shape = nnx.state(m, nnx.Param)
    bad_shape.block1.linear.w = jnp.zeros((5, 5))
    bad_shape.block1.linear.b = jnp.full((2,), 3.0)
    with pytest.raises(ValueError, match=r"'block1.linear.w' of Model has shape \(2, 2\) but the State holds shape \(5, 5\)"):
        nnx.update(m, bad_shape)
    np.testing.assert_allclose(m.block1.linear.w, before)
    np.testing.assert_allclose(m.block1.linear.b, 0.0)  # not partially written
    missing: nnx.State[Model] = nnx.State({"block1": {"linaer": {"w": jnp.zeros((2, 2))}}})
    with pytest.raises(ValueError, match=r"Model has no state at \['block1.linaer.w'\]"):
        nnx.update(m, missing)


def test_state_views_and_mapping_access() -> None:
    m = Model(nnx.Rngs(0))
    s = nnx.state(m)
    np.testing.assert_allclose(s.block1.linear.w, s["block1"]["linear"]["w"])
    s.block1.linear.w = jnp.ones((2, 2))  # write through a sub-view
    np.testing.assert_allclose(s["block1"]["linear"]["w"], 1.0)
    assert set(s.block1) == {"linear", "norm"}
    with pytest.raises(AttributeError, match=r"no entry 'linaer'"):
        s.block1.linaer  # type: ignore[nnx-state-path]  # noqa: B018  # the run-time error under test
    nested = s.to_dict()
    assert set(nested["block1"]["norm"]) == {"mean", "scale"}


def test_state_flat_round_trip_and_tree_map_keeps_kinds() -> None:
    m = Model(nnx.Rngs(0))
    s = nnx.state(m)
    flat = s.flat_state()
    assert isinstance(flat[("block1", "norm", "mean")], nnx.BatchStat)
    assert nnx.State.from_flat_state(flat) == s
    def double(x: jax.Array) -> jax.Array:
        return x * 2

    doubled = jax.tree.map(double, s)
    assert doubled.paths == s.paths and doubled.kind(("block1", "norm", "mean")) is nnx.BatchStat
    np.testing.assert_allclose(doubled.block1.norm.scale, 2.0)
    flat_with_path = jax.tree_util.tree_flatten_with_path(s)[0]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # jax: untyped key paths
    keys = [jax.tree_util.keystr(k) for k, _ in flat_with_path]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    assert any("block1.linear.w" in k for k in keys)


def test_state_filter_split_merge() -> None:
    s = nnx.state(Model(nnx.Rngs(0)))
    params, stats = s.filter(nnx.Param, nnx.BatchStat)
    assert set(params.paths) | set(stats.paths) == set(s.paths)
    assert nnx.State.merge(params, stats) == s
    with pytest.raises(ValueError, match="unmatched"):
        s.split(nnx.Param)
    only, rest = s.split("batch_stats", ...)
    assert set(only.paths) == set(stats.paths)
    assert set(rest.paths) == set(params.paths)


def test_pop_removes_from_every_holder() -> None:
    m = Model(nnx.Rngs(0))
    # setattr: attributes added after construction are invisible to checkers, on purpose here
    setattr(m.block1, "probe", nnx.Intermediate(jnp.ones(3)))
    setattr(m.block2.norm, "probe", nnx.cell(m.block1, "probe"))  # shared intermediate
    popped = nnx.pop(m, nnx.Intermediate)  # intermediates are dynamic: not checked
    assert popped.paths == (("block1", "probe"),)
    assert "probe" not in vars(m.block1) and "probe" not in vars(m.block2.norm)
    assert not any(p[-1] == "probe" for p in nnx.state(m).paths)


def test_clone_is_independent() -> None:
    m = Model(nnx.Rngs(0))
    c = nnx.clone(m)
    c.block1.linear.w = jnp.zeros((2, 2))
    assert not np.allclose(m.block1.linear.w, 0.0)
    assert c.block1.linear is c.block2.linear


def test_iter_graph_yields_every_node_once() -> None:
    m = Model(nnx.Rngs(0))
    items = list(nnx.iter_graph(m))
    assert items[0] == ((), m)
    nodes: list[object] = [v for _, v in items if isinstance(v, (nnx.Object, nnx.Variable))]
    assert len(nodes) == len({id(v) for v in nodes})
    paths = [p for p, _ in items]
    assert ("block1", "linear", "w") in paths and ("block2", "linear") not in paths


def test_jax_jit_path_split_outside_merge_inside() -> None:
    """The documented plain-jax.jit path: split outside, merge inside, return the new state."""
    m = Model(nnx.Rngs(0))
    g, s = nnx.split(m)

    @jit
    def step(s: nnx.State[Model], x: jax.Array) -> tuple[jax.Array, nnx.State[Model]]:
        model = nnx.merge(g, s)
        model.block1.norm.mean = model.block1.norm.mean + x.mean()
        y = model.block1.linear(x)
        return y, nnx.state(model)

    y, new = step(s, jnp.ones((3, 2)))
    nnx.update(m, new)
    np.testing.assert_allclose(m.block1.norm.mean, 1.0)
    assert y.shape == (3, 2)


def test_unknown_collection_and_non_filters_are_rejected() -> None:
    m = Model(nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"unknown collection 'parmas'. Known collections: .*'params'"):
        nnx.state(m, "parmas")  # type: ignore[nnx-collection]  # the run-time error under test
    with pytest.raises(TypeError, match=r"3 \(int\) is not a filter"):
        nnx.state(m, 3)  # type: ignore[nnx-filter]  # pyright: ignore[reportCallIssue, reportArgumentType]  # under test


def test_root_tuple_of_arrays_round_trips() -> None:
    g, s = nnx.split((jnp.ones(2), jnp.zeros(3)))
    assert s.paths == ((0,), (1,))
    a, b = nnx.merge(g, s)
    np.testing.assert_allclose(a, 1.0)
    assert b.shape == (3,)


def test_update_keeps_plain_numpy_attributes_arrays() -> None:
    class Holder(nnx.Module):
        def __init__(self) -> None:
            self.a = np.zeros((), np.float32)

    h = Holder()
    def plus_one(x: np.ndarray) -> np.ndarray:
        return x + 1

    new = jax.tree.map(plus_one, nnx.state(h))  # 0-d NumPy + 1 is a NumPy scalar
    nnx.update(h, new)
    assert isinstance(h.a, np.ndarray) and float(h.a) == 1.0
    assert nnx.state(h).paths == (("a",),)


# -- depth, shapes, dtypes and bad arguments (issue 14) -------------------------


class Link(nnx.Module):
    """One link of a chain of submodules."""

    w: jax.Array = nnx.param()

    def __init__(self, child: "Link | None") -> None:
        self.w = jnp.zeros((2,))
        self.child = child


def plus_one(x: jax.Array) -> jax.Array:
    return x + 1


def twice(x: jax.Array) -> jax.Array:
    return x * 2


def stack_two(x: jax.Array) -> jax.Array:
    return jnp.stack([x, x + 1])


def chain(depth: int) -> Link:
    link = Link(None)
    for _ in range(depth - 1):
        link = Link(link)
    return link


def test_a_2000_deep_chain_splits_merges_updates_and_clones() -> None:
    depth = 2000  # four times what recursion reached at the default limit
    m = chain(depth)
    graphdef, state = nnx.split(m)
    assert len(state.paths) == depth
    assert state.paths[0] == ("child",) * (depth - 1) + ("w",)  # sorted: the deepest first
    assert len(nnx.state(m, nnx.Param).paths) == depth
    nnx.update(m, tree_map(plus_one, state))
    assert float(m.w[0]) == 1.0
    for built in (nnx.merge(graphdef, state), nnx.merge(graphdef, state), nnx.clone(m)):  # interpreted, compiled, clone
        link: Link | None = built
        n = 0
        while link is not None:
            assert link is not m
            link, n = link.child, n + 1
        assert n == depth
    assert nnx.graphdef(nnx.clone(m)) == graphdef  # deep GraphDefs compare without recursion


def test_a_2000_deep_chain_iterates_pops_and_has_a_repr() -> None:
    depth = 2000
    m = chain(depth)
    items = list(nnx.iter_graph(m))
    links = [v for _, v in items if isinstance(v, Link)]
    assert len(links) == depth and links[0] is m
    # pre-order, attributes sorted: every link down the chain, then the cells on the way back
    assert [p for p, _ in items[depth - 1 : depth + 1]] == [("child",) * (depth - 1), ("child",) * (depth - 1) + ("w",)]
    assert items[-1][0] == ("w",)
    text = repr(nnx.graphdef(m))
    assert text.startswith("GraphDef(Link#0(\n  child=Link#1(") and text.count("Link#") == depth
    popped = nnx.pop(m, nnx.Param)
    assert len(popped.paths) == depth
    assert nnx.state(m).paths == ()
    link: Link | None = m
    while link is not None:
        assert "w" not in vars(link)
        link = link.child


def test_update_from_a_foreign_trace_is_refused_after_updates_that_were_fine() -> None:
    # update remembers, with the cached walk, which trace the cells were made in: the
    # shortcut must still refuse a write from another trace (a model captured by jax.jit).
    m = Linear(2, 3, rngs=nnx.Rngs(0))
    state = nnx.state(m)
    nnx.update(m, tree_map(plus_one, state))
    nnx.update(m, state)  # fine twice: made at the top level, updated at the top level
    before = [np.asarray(v) for v in nnx.state(m).leaves]

    def inside(x: jax.Array) -> jax.Array:
        def shift(v: jax.Array) -> jax.Array:
            return v + x

        nnx.update(m, tree_map(shift, state))
        return x

    with pytest.raises(nnx.TraceContextError):
        jit(inside)(jnp.ones(()))
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before, nnx.state(m).leaves))
    nnx.update(m, tree_map(plus_one, state))  # and the top level still may
    assert np.array_equal(np.asarray(m.b), np.asarray(state["b"]) + 1)


class Cells(nnx.Module):
    """Cells and static values first, then (maybe) a submodule: the walk's two ways in."""

    def __init__(self, size: int) -> None:
        self.a = nnx.Param(jnp.full((size,), float(size)))
        self.n = size


def test_modules_that_turn_out_not_to_be_leaves_split_and_merge_exactly() -> None:
    root = Cells(1)
    leafy = Cells(2)
    setattr(leafy, "b_seen", root.a)  # a cell walked before, in a leaf module
    setattr(leafy, "c_sub", Cells(3))  # then a submodule: the leaf becomes a frame mid-way
    setattr(leafy, "d_back", root)  # and a cycle back to the root after it
    setattr(leafy, "e_last", nnx.BatchStat(jnp.zeros(2)))  # a cell after the submodule
    setattr(root, "child", leafy)
    graphdef, state = nnx.split(root)
    assert state.paths == (("a",), ("child", "a"), ("child", "c_sub", "a"), ("child", "e_last"))
    assert [state.kind(p) for p in state.paths] == [nnx.Param, nnx.Param, nnx.Param, nnx.BatchStat]
    for built in (nnx.merge(graphdef, state), nnx.merge(graphdef, state)):  # interpreted, compiled
        child: Any = getattr(built, "child")
        assert child.b_seen is built.a and child.d_back is built and child.c_sub.n == 3
        assert float(child.c_sub.a[0]) == 3.0 and child.n == 2
        assert nnx.graphdef(built) == graphdef


def test_merge_refuses_a_state_of_other_shapes_naming_the_path() -> None:
    graphdef, _ = nnx.split(Linear(2, 3, rngs=nnx.Rngs(0)))
    _, other = nnx.split(Linear(4, 5, rngs=nnx.Rngs(0)))  # same paths and kinds, other shapes
    with pytest.raises(ValueError, match=r"'b' of Linear had shape \(3,\) .* holds shape \(5,\)"):
        nnx.merge(graphdef, other)


def test_merge_accepts_leading_axes_as_under_vmap() -> None:
    """A stacked State merged one layer at a time (vmap/scan over layers) is not a misfit."""
    graphdef, state = nnx.split(Linear(2, 3, rngs=nnx.Rngs(0)))
    stacked = tree_map(stack_two, state)

    def apply(s: nnx.State[Linear]) -> jax.Array:
        return nnx.merge(graphdef, s)(jnp.ones((2,)))

    out = vmap(apply)(stacked)
    assert out.shape == (2, 3)
    assert nnx.merge(graphdef, stacked).w.shape == (2, 2, 3)  # and the stacked module itself


def test_merge_sees_an_array_replaced_by_one_of_another_shape() -> None:
    """Replacing an array is not structural; the GraphDef of the next split has the new shape."""
    m = Linear(2, 3, rngs=nnx.Rngs(0))
    nnx.split(m)
    m.b = jnp.zeros((7,))
    graphdef, state = nnx.split(m)
    assert nnx.merge(graphdef, state).b.shape == (7,)
    assert nnx.merge(nnx.graphdef(m), state).b.shape == (7,)


@pytest.mark.parametrize("bad", [{"w": 1}, [1, 2], None, "state"])
def test_merge_refuses_what_is_not_a_state_naming_the_argument(bad: object) -> None:
    graphdef, state = nnx.split(Linear(2, 3, rngs=nnx.Rngs(0)))
    with pytest.raises(TypeError, match=r"nnx.merge: state argument 1 \(after the GraphDef\) is a .*nnx.State"):
        nnx.merge(graphdef, bad)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]
    with pytest.raises(TypeError, match=r"state argument 2"):
        nnx.merge(graphdef, state, bad)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]


@pytest.mark.parametrize("bad", ["x", "module", "object"])
def test_update_refuses_non_arrays_naming_the_path_and_writes_nothing(bad: str) -> None:
    m = Linear(2, 3, rngs=nnx.Rngs(0))
    before = nnx.state(m)
    value = {"x": "x", "module": Linear(1, 1, rngs=nnx.Rngs(1)), "object": object()}[bad]
    new: nnx.State[Linear] = nnx.State({"b": jnp.ones((3,)), "w": value})
    with pytest.raises(TypeError, match=r"nnx.update: 'w' of Linear holds an array, but the State holds"):
        nnx.update(m, new)
    assert nnx.state(m) == before  # 'b' came first and fitted, yet was not written


def test_update_refuses_a_mis_shaped_value_naming_the_path() -> None:
    m = Linear(2, 3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"'b' of Linear has shape \(3,\) but the State holds shape \(4,\)"):
        nnx.update(m, nnx.State({"b": jnp.ones((4,))}))
    assert m.b.shape == (3,)


def test_update_keeps_dtypes_and_says_how_to_cast() -> None:
    """The rule: nnx.update never changes a leaf's dtype; a value of another dtype is refused."""
    m = Linear(2, 3, rngs=nnx.Rngs(0))
    for value in (jnp.ones((3,), jnp.bfloat16), np.ones((3,), np.float64), jnp.ones((3,), jnp.int32)):
        with pytest.raises(TypeError, match=r"'b' of Linear has dtype float32 but the State holds dtype .*astype\(float32\)"):
            nnx.update(m, nnx.State({"b": value}))
        assert m.b.dtype == jnp.float32
    nnx.update(m, nnx.State({"b": np.ones((3,), np.float32)}))  # same dtype, NumPy: fine
    assert m.b.dtype == np.float32


def test_update_through_a_cached_walk_still_checks() -> None:
    """The C-level fast path must not skip the checks for values it has not seen."""
    m = Linear(2, 3, rngs=nnx.Rngs(0))
    state = nnx.state(m)
    nnx.update(m, state)
    nnx.update(m, tree_map(twice, state))
    with pytest.raises(TypeError, match="'w' of Linear holds an array"):
        nnx.update(m, nnx.State({"w": 3}))


def test_cached_walk_sees_a_shared_list_replaced_by_an_equal_copy() -> None:
    """The re-check after a structural change compares children by identity, not ==."""
    class Two(nnx.Module):
        a: nnx.List[nnx.Param[jax.Array]]
        b: nnx.List[nnx.Param[jax.Array]]

    t = Two()
    t.a = nnx.List([nnx.Param(jnp.zeros(1))])
    t.b = t.a  # shared
    g1, _ = nnx.split(t)
    assert "b=<shared #1>" in repr(g1)  # the list itself is shared
    object.__getattribute__(t, "__dict__")["b"] = nnx.List(list(t.a))  # equal, not the same, no bump
    epoch.bump()
    g2, _ = nnx.split(t)
    assert g2 != g1 and "b=[<shared #2>]" in repr(g2)  # two lists now, sharing one cell
