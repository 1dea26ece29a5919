"""Property tests (hypothesis) for the graph layer: split / merge / update / state / filters.

A strategy builds random module graphs: a few module classes with declared
fields and undeclared attributes, nested and *shared* submodules, shared cells,
reference cycles, ``nnx.List`` / ``nnx.Dict`` / tuple containers holding modules,
cells, arrays and static values, several Variable kinds, plain array attributes
and static attributes. Every property is checked against an independent walk
of the object graph (``analyze`` below), never against nnx's own traversal.
"""

# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (This file builds random object graphs from hypothesis draws: its values are ``Any``
# by nature, and isinstance narrows them to ``Variable[Unknown]``; mypy --strict and the
# other pyright rules still apply.)

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import nnx
from nnx import epoch, rewalk
from walkcheck import assert_like_a_full_walk

SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("NNX_PROP_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Count(nnx.Variable[Any]):
    """A user kind; its collection is ``"count"``."""


KINDS: list[type[nnx.Variable[Any]]] = [nnx.Param, nnx.BatchStat, Count]


class Leaf(nnx.Module):
    w: jax.Array = nnx.param()

    def __init__(self, w: jax.Array) -> None:  # declared state is assigned by construction
        self.w = w


class Stat(nnx.Module):
    w: jax.Array = nnx.param()
    s: jax.Array = nnx.batch_stat()
    act: str = nnx.static()

    def __init__(self, w: jax.Array, s: jax.Array, act: str) -> None:
        self.w, self.s, self.act = w, s, act


class Bag(nnx.Module):
    """No declared fields: only undeclared attributes (those set by BagOf are annotated)."""

    x: Any
    c: Count


MODULE_CLASSES: list[type[nnx.Module]] = [Leaf, Stat, Bag]
ATTR_NAMES = ["a", "b", "c", "d", "e"]
DICT_KEYS: list[str | int] = [0, 1, 2, "k", "m", "z"]
SHAPES = [(), (1,), (2,), (3,), (2, 2), (3, 3), (1, 3)]


# -- generating graphs -----------------------------------------------------------

numpy_arrays = st.sampled_from([np.float32, np.int32]).flatmap(
    lambda dt: st.sampled_from(SHAPES).flatmap(lambda shape: hnp.arrays(dt, shape, elements=st.integers(-3, 3)))
)
#: Cell values and most plain attributes are JAX arrays; plain attributes are sometimes NumPy arrays.
arrays = st.builds(jnp.asarray, numpy_arrays)
plain_arrays = st.one_of(arrays, arrays, numpy_arrays)


def short(x: Any) -> str:
    if isinstance(x, nnx.Variable):
        return f"{type(x).__name__}({short(x.value)})"
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"{x.dtype}{list(x.shape)}"
    return repr(x)


class Case:
    """A generated graph: ``root`` plus the script that built it (shown on failure)."""

    def __init__(
        self, root: nnx.Module, mods: list[nnx.Module], cells: list[nnx.Variable[Any]], containers: list[Any], log: list[str]
    ) -> None:
        self.root, self.mods, self.cells, self.containers, self.log = root, mods, cells, containers, log

    def __repr__(self) -> str:
        return "Case:\n    " + "\n    ".join(self.log)


class _Builder:
    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.mods: list[nnx.Module] = []
        self.cells: list[nnx.Variable[Any]] = []
        self.containers: list[Any] = []  # nnx.List / nnx.Dict already attached somewhere
        self.log: list[str] = []
        self.names: dict[int, str] = {}

    def name(self, x: Any) -> str:
        return self.names.get(id(x), short(x))

    def fresh_cell(self) -> nnx.Variable[Any]:
        kind = self.draw(st.sampled_from(KINDS))
        meta = self.draw(st.sampled_from([{}, {}, {"sharding": ("x", None)}, {"tag": "t", "n": 3}, {"axes": ["x"]}]))
        cell: nnx.Variable[Any] = kind(self.draw(arrays), **meta)
        self.cells.append(cell)
        self.names[id(cell)] = f"v{len(self.cells) - 1}"
        self.log.append(f"v{len(self.cells) - 1} = {short(cell)}{' ' + repr(meta) if meta else ''}")
        return cell

    def value(self, depth: int) -> Any:
        """Any attribute / container value: node, shared node, array, static or container."""
        choices = ["fresh_cell", "array", "static", "module"]
        if self.cells:
            choices.append("shared_cell")
        if self.containers:
            choices.append("shared_container")
        if depth < 2:
            choices += ["list", "dict", "tuple"]
        what = self.draw(st.sampled_from(choices))
        if what == "fresh_cell":
            return self.fresh_cell()
        if what == "shared_cell":
            return self.draw(st.sampled_from(self.cells))
        if what == "module":  # any module, possibly an ancestor (a cycle) or already attached (sharing)
            return self.draw(st.sampled_from(self.mods))
        if what == "shared_container":
            return self.draw(st.sampled_from(self.containers))
        if what == "array":
            return self.draw(plain_arrays)
        if what == "static":
            return self.draw(st.one_of(st.integers(-2, 5), st.sampled_from(["x", "relu", ""]), st.none()))
        n = self.draw(st.integers(0, 3))
        items = [self.value(depth + 1) for _ in range(n)]
        if what == "list":
            return items
        if what == "tuple":
            return tuple(items)
        keys = self.draw(st.lists(st.sampled_from(DICT_KEYS), min_size=n, max_size=n, unique=True))
        return dict(zip(keys, items))

    def assign(self, owner: nnx.Module, value: Any) -> None:
        name = self.draw(st.sampled_from(ATTR_NAMES))
        setattr(owner, name, value)
        stored = getattr(owner, name)
        if isinstance(stored, (nnx.List, nnx.Dict)) and stored is not value:
            self.containers.append(stored)
            self.names[id(stored)] = f"{self.name(owner)}.{name}"
        self.log.append(f"{self.name(owner)}.{name} = {self.describe(value)}")

    def describe(self, value: Any) -> str:
        if id(value) in self.names:
            return self.names[id(value)]
        if isinstance(value, list):
            return "[" + ", ".join(self.describe(v) for v in value) + "]"
        if isinstance(value, tuple):
            return "(" + "".join(self.describe(v) + ", " for v in value) + ")"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {self.describe(v)}" for k, v in value.items()) + "}"
        return short(value)


@st.composite
def graphs(draw: Any, max_modules: int = 5, max_ops: int = 8) -> Case:
    b = _Builder(draw)
    n = draw(st.integers(1, max_modules))
    for i in range(n):
        cls = draw(st.sampled_from(MODULE_CLASSES))
        m: nnx.Module
        if cls is Leaf:
            m = Leaf(draw(arrays))
        elif cls is Stat:
            m = Stat(draw(arrays), draw(arrays), draw(st.sampled_from(["relu", "gelu"])))
        else:
            m = Bag()
        b.names[id(m)] = f"m{i}"
        b.log.append(f"m{i} = {cls.__name__}(...)")
        if isinstance(m, (Leaf, Stat)):
            b.log.append(f"m{i}.w = {short(m.w)}")
            b.cells.append(nnx.cell(m, "w"))
            b.names[id(nnx.cell(m, "w"))] = f"cell(m{i}, 'w')"
        if isinstance(m, Stat):
            b.log.append(f"m{i}.s = {short(m.s)}; m{i}.act = {m.act!r}")
            b.cells.append(nnx.cell(m, "s"))
            b.names[id(nnx.cell(m, "s"))] = f"cell(m{i}, 's')"
        b.mods.append(m)
    # A spanning tree, so that every module is reachable from m0 (later ops may cut it).
    for i in range(1, n):
        parent = b.mods[draw(st.integers(0, i - 1))]
        how = draw(st.sampled_from(["attr", "attr", "list", "dict", "tuple"]))
        child = b.mods[i]
        if how == "attr":
            b.assign(parent, child)
        elif how == "list":
            b.assign(parent, [child, *(b.value(1) for _ in range(draw(st.integers(0, 2))))])
        elif how == "tuple":
            b.assign(parent, (b.value(1), child))
        else:
            b.assign(parent, {draw(st.sampled_from(DICT_KEYS)): child})
    # Extra structure: new attributes, sharing, cycles, declared-field cell adoption.
    for _ in range(draw(st.integers(0, max_ops))):
        owner = draw(st.sampled_from(b.mods))
        op = draw(st.sampled_from(["assign", "assign", "assign", "adopt_cell", "into_container"]))
        if op == "adopt_cell" and isinstance(owner, (Leaf, Stat)):
            field_name = draw(st.sampled_from(["w", "s"] if isinstance(owner, Stat) else ["w"]))
            kind = nnx.Param if field_name == "w" else nnx.BatchStat
            candidates = [c for c in b.cells if type(c) is kind]
            cell = draw(st.sampled_from(candidates))
            setattr(owner, field_name, cell)
            b.log.append(f"{b.name(owner)}.{field_name} = {b.name(cell)}  # adopt (share) the cell")
        elif op == "into_container" and b.containers:
            box = draw(st.sampled_from(b.containers))
            item = b.value(1)
            if isinstance(box, nnx.List):
                box.append(item)
                b.log.append(f"{b.name(box)}.append({b.describe(item)})")
            else:
                key = draw(st.sampled_from(DICT_KEYS))
                box[key] = item
                b.log.append(f"{b.name(box)}[{key!r}] = {b.describe(item)}")
        else:
            b.assign(owner, b.value(0))
    return Case(b.mods[0], b.mods, b.cells, b.containers, b.log)


# -- an independent walk of the object graph ---------------------------------------

IDENTITY = (nnx.Object, nnx.List, nnx.Dict, nnx.Variable)


def is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def children(node: Any) -> list[tuple[Any, Any]]:
    items: list[tuple[Any, Any]]
    if isinstance(node, nnx.Object):
        items = list(vars(node).items())
    elif isinstance(node, dict):
        items = list(node.items())
    else:
        items = list(enumerate(node))
    return sorted(items, key=lambda kv: (isinstance(kv[0], str), kv[0]))


@dataclass
class Graph:
    """What a walk from the root sees.

    * ``first``: identity node -> the path of its first visit (depth first, keys sorted);
    * ``edges``: every location holding an identity node -> the first path of that node;
    * ``types``: first path -> the node's type;
    * ``leaves``: state leaf path -> (kind or None, value, metadata);
    * ``statics``: location -> static value;
    * ``tuple_held``: the locations whose immediate container is a tuple.
    """

    objs: dict[int, Any]
    first: dict[int, tuple[Any, ...]]
    edges: dict[tuple[Any, ...], tuple[Any, ...]]
    types: dict[tuple[Any, ...], type]
    leaves: dict[tuple[Any, ...], tuple[Any, Any, dict[str, Any]]]
    statics: dict[tuple[Any, ...], Any]
    tuple_held: set[tuple[Any, ...]]

    def shared(self) -> dict[tuple[Any, ...], frozenset[tuple[Any, ...]]]:
        """First path of each identity node -> every location that reaches it."""
        groups: dict[tuple[Any, ...], set[tuple[Any, ...]]] = {}
        for loc, target in self.edges.items():
            groups.setdefault(target, set()).add(loc)
        return {t: frozenset(g) for t, g in groups.items()}

    def sharing_classes(self) -> set[frozenset[tuple[Any, ...]]]:
        """Locations grouped by the object they reach (the pairs 'same object')."""
        return set(self.shared().values())

    def has_cycle(self) -> bool:
        return any(loc != target and loc[: len(target)] == target for loc, target in self.edges.items())

    def kinds(self) -> dict[tuple[Any, ...], Any]:
        return {p: k for p, (k, _, _) in self.leaves.items()}


def analyze(root: Any) -> Graph:
    g = Graph({}, {}, {}, {}, {}, {}, set())

    def walk(path: tuple[Any, ...], v: Any, in_tuple: bool = False) -> None:
        if in_tuple:
            g.tuple_held.add(path)
        if isinstance(v, IDENTITY):
            if id(v) in g.first:
                g.edges[path] = g.first[id(v)]
                return
            g.first[id(v)] = path
            g.objs[id(v)] = v
            g.edges[path] = path
            g.types[path] = type(v)
            if isinstance(v, nnx.Variable):
                g.leaves[path] = (type(v), v.value, v.metadata)
                return
        elif is_array(v):
            g.leaves[path] = (None, v, {})
            return
        elif type(v) is not tuple:
            g.statics[path] = v
            return
        for k, c in children(v):
            walk((*path, k), c, type(v) is tuple)

    walk((), root)
    return g


def assert_values_equal(a: Any, b: Any) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a, b)
    np.testing.assert_array_equal(a, b)


def assert_same_graph(a: Graph, b: Graph) -> None:
    """Same structure, same sharing (incl. cycles), same values, kinds, metadata, statics."""
    assert a.types == b.types
    assert a.edges == b.edges
    assert a.sharing_classes() == b.sharing_classes()
    assert a.has_cycle() == b.has_cycle()
    assert a.statics == b.statics
    assert a.leaves.keys() == b.leaves.keys()
    for p, (ka, va, ma) in a.leaves.items():
        kb, vb, mb = b.leaves[p]
        assert ka is kb, p
        assert ma == mb, p
        assert_values_equal(va, vb)


def resolve(root: Any, path: tuple[Any, ...]) -> Any:
    """The raw object stored at ``path`` (cells, not their values)."""
    node = root
    for k in path:
        node = vars(node)[k] if isinstance(node, nnx.Object) else node[k]
    return node


def fresh_graphdef(node: Any) -> nnx.GraphDef[Any]:
    """The GraphDef from a full walk, bypassing any cached walk."""
    epoch.bump()
    return nnx.graphdef(node)


def record(g: Graph) -> None:
    if g.has_cycle():
        event("cycle")
    for first, locs in g.shared().items():
        if len(locs) > 1:
            event("shared cell" if issubclass(g.types[first], nnx.Variable) else "shared node")


# -- filters: generated, compiled to nnx, and evaluated independently --------------


def pred_ndim1(path: tuple[Any, ...], value: Any) -> bool:
    return len(value.shape) == 1


def pred_positive(path: tuple[Any, ...], value: Any) -> bool:
    return float(np.sum(np.asarray(value))) > 0


def pred_even_depth(path: tuple[Any, ...], value: Any) -> bool:
    return len(path) % 2 == 0


def pred_is_cell(path: tuple[Any, ...], value: Any) -> bool:
    return isinstance(value, nnx.Variable)


#: name -> (the nnx predicate, the same test written against the independent walk)
PREDICATES: dict[str, tuple[Callable[[Any, Any], bool], Callable[[tuple[Any, ...], Any, Any], bool]]] = {
    "ndim1": (pred_ndim1, lambda path, kind, arr: np.ndim(arr) == 1),
    "positive": (pred_positive, lambda path, kind, arr: float(np.sum(np.asarray(arr))) > 0),
    "even_depth": (pred_even_depth, lambda path, kind, arr: len(path) % 2 == 0),
    "is_cell": (pred_is_cell, lambda path, kind, arr: kind is not None),
}

leaf_filters = st.sampled_from(
    [
        ("type", nnx.Param),
        ("type", nnx.BatchStat),
        ("type", Count),
        ("type", nnx.Variable),
        ("type", jax.Array),
        ("coll", "params"),
        ("coll", "batch_stats"),
        ("coll", "count"),
        ("path", "a"),
        ("path", "w"),
        ("path", 0),
        ("path", "k"),
        ("pred", "ndim1"),
        ("pred", "positive"),
        ("pred", "even_depth"),
        ("pred", "is_cell"),
        ("buffers",),
        ("everything",),
        ("true",),
        ("nothing",),
    ]
)

filter_asts = st.recursive(
    leaf_filters,
    lambda inner: st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.just("all"), st.lists(inner, max_size=3).map(tuple)),
        st.tuples(st.just("any"), st.lists(inner, max_size=3).map(tuple)),
        st.tuples(st.just("tuple"), st.lists(inner, max_size=3).map(tuple)),
    ),
    max_leaves=6,
)


def to_nnx(ast: tuple[Any, ...]) -> Any:
    tag = ast[0]
    if tag == "type":
        return ast[1]
    if tag == "coll":
        return ast[1]
    if tag == "path":
        return nnx.PathContains(ast[1])
    if tag == "pred":
        return PREDICATES[ast[1]][0]
    if tag == "buffers":
        return nnx.buffers
    if tag == "everything":
        return ...
    if tag == "true":
        return True
    if tag == "nothing":
        return False
    if tag == "not":
        return nnx.Not(to_nnx(ast[1]))
    if tag == "all":
        return nnx.All(*(to_nnx(a) for a in ast[1]))
    if tag == "any":
        return nnx.Any(*(to_nnx(a) for a in ast[1]))
    assert tag == "tuple"
    return tuple(to_nnx(a) for a in ast[1])


def misplaced_everything(asts: list[tuple[Any, ...]]) -> bool:
    """Whether a filter list followed by ``...`` has ``...`` (or ``True``) before the end,
    which split refuses: the filters after it would always get nothing."""
    return any(a[0] in ("everything", "true") for a in asts)


def expect(ast: tuple[Any, ...], path: tuple[Any, ...], kind: Any, arr: Any) -> bool:
    """What ``ast`` should say about a leaf, from the documented semantics."""
    tag = ast[0]
    if tag == "type":
        t = ast[1]
        if issubclass(t, nnx.Variable):
            return kind is not None and issubclass(kind, t)
        return kind is None and isinstance(arr, t)
    if tag == "coll":
        return kind is not None and any(
            getattr(base, "collection", None) == ast[1] for base in kind.__mro__ if issubclass(base, nnx.Variable)
        )
    if tag == "path":
        return ast[1] in path
    if tag == "pred":
        return PREDICATES[ast[1]][1](path, kind, arr)
    if tag == "buffers":
        return kind is None
    if tag in ("everything", "true"):
        return True
    if tag == "nothing":
        return False
    if tag == "not":
        return not expect(ast[1], path, kind, arr)
    if tag == "all":
        return all(expect(a, path, kind, arr) for a in ast[1])
    return any(expect(a, path, kind, arr) for a in ast[1])  # any / tuple


def expected_groups(g: Graph, asts: list[tuple[Any, ...]]) -> list[set[tuple[Any, ...]]]:
    """Each leaf goes to the first filter that matches it; the last group is ``...``."""
    groups: list[set[tuple[Any, ...]]] = [set() for _ in range(len(asts) + 1)]
    for path, (kind, value, _) in g.leaves.items():
        for i, ast in enumerate(asts):
            if expect(ast, path, kind, value):
                groups[i].add(path)
                break
        else:
            groups[-1].add(path)
    return groups


# -- properties -------------------------------------------------------------------


@SETTINGS
@given(case=graphs())
def test_state_paths_are_the_first_visits_of_an_independent_walk(case: Case) -> None:
    g = analyze(case.root)
    record(g)
    s = nnx.state(case.root)
    assert list(s.paths) == sorted(g.leaves, key=lambda p: tuple((isinstance(k, str), k) for k in p))
    assert {p: s.kind(p) for p in s.paths} == g.kinds()
    for p, (_, value, meta) in g.leaves.items():
        assert_values_equal(s.flat_state()[p] if s.kind(p) is None else s.flat_state()[p].value, value)
        assert s.metadata(p) == meta


@SETTINGS
@given(case=graphs())
def test_merge_of_split_rebuilds_the_same_graph_with_new_cells(case: Case) -> None:
    m = case.root
    before = analyze(m)
    record(before)
    graphdef, state = nnx.split(m)
    clone = nnx.merge(graphdef, state)

    assert type(clone) is type(m)
    assert nnx.graphdef(clone) == graphdef
    assert fresh_graphdef(clone) == graphdef
    assert fresh_graphdef(m) == graphdef
    after = analyze(clone)
    assert_same_graph(before, after)
    assert nnx.state(clone) == state
    # The clone owns its nodes: no module, container or cell of the original is reused.
    assert not set(before.objs) & set(after.objs)
    # and the original is untouched by the round trip.
    assert_same_graph(before, analyze(m))
    for p, obj in before.objs.items():
        assert resolve(m, before.first[p]) is obj

    # Later merges of the same GraphDef run its compiled builder: the same graph, new nodes.
    for _ in range(2):
        rebuilt = nnx.merge(graphdef, state)
        assert_same_graph(before, analyze(rebuilt))
        assert not set(before.objs) & set(analyze(rebuilt).objs)
        assert not set(after.objs) & set(analyze(rebuilt).objs)
        assert nnx.state(rebuilt) == state
        assert fresh_graphdef(rebuilt) == graphdef

    # nnx.clone is the same round trip.
    again = nnx.clone(m)
    assert_same_graph(before, analyze(again))
    assert not set(before.objs) & set(analyze(again).objs)


@SETTINGS
@given(case=graphs(), asts=st.lists(filter_asts, max_size=3), rnd=st.randoms(use_true_random=False))
def test_split_by_filters_then_merge_all_parts_loses_nothing(
    case: Case, asts: list[tuple[Any, ...]], rnd: random.Random
) -> None:
    m = case.root
    before = analyze(m)
    if misplaced_everything(asts):
        with pytest.raises(ValueError, match="must be the last filter"):
            nnx.split(m, *(to_nnx(a) for a in asts), ...)
        return
    graphdef, *parts = nnx.split(m, *(to_nnx(a) for a in asts), ...)
    assert len(parts) == len(asts) + 1
    assert [set(p.paths) for p in parts] == expected_groups(before, asts)
    rnd.shuffle(parts)  # the states are told apart by their paths, not their order
    clone = nnx.merge(graphdef, *parts)
    assert_same_graph(before, analyze(clone))
    assert fresh_graphdef(clone) == graphdef


@SETTINGS
@given(
    case=graphs(),
    delta=st.integers(1, 3),
    ast=st.none() | filter_asts,
    target=st.sampled_from(["original", "clone"]),
    cached=st.booleans(),
)
def test_update_writes_in_place_into_existing_cells(
    case: Case, delta: int, ast: tuple[Any, ...] | None, target: str, cached: bool
) -> None:
    m = case.root if target == "original" else nnx.merge(*nnx.split(case.root))  # a clone: merge's cache
    before = analyze(m)
    record(before)
    state = nnx.state(m)
    new = jax.tree.map(lambda x: x + delta, state)
    if ast is not None:
        new = new.filter(to_nnx(ast))
    written = set(new.paths)
    new_values = dict(zip(new.paths, new.leaves))
    if not cached:
        epoch.bump()
    nnx.update(m, new)

    after = analyze(m)
    assert after.edges == before.edges and after.types == before.types
    # Every module, container and cell is still the very same object.
    assert set(after.objs) == set(before.objs)
    for key, path in before.first.items():
        assert resolve(m, path) is before.objs[key]
    for path, (_, old, _) in before.leaves.items():
        now = after.leaves[path][1]
        assert_values_equal(now, new_values[path] if path in written else old)
    # Every holder of a cell reads the new value, through any of its locations.
    for loc, first in after.edges.items():
        cell = resolve(m, loc)
        if not isinstance(cell, nnx.Variable):
            continue
        assert cell is resolve(m, first)
        expected = new_values[first] if first in written else before.leaves[first][1]
        assert_values_equal(cell.value, expected)
        holder = resolve(m, loc[:-1])
        if isinstance(holder, nnx.Object):  # the attribute read (declared fields give the value)
            assert_values_equal(getattr(holder, loc[-1]), expected)
    # The next split sees the written values (select by path: predicates may now answer differently).
    assert nnx.state(m, lambda path, _: path in written) == new


@SETTINGS
@given(case=graphs(), asts=st.lists(filter_asts, min_size=1, max_size=3))
def test_filters_select_exactly_the_matching_leaves(case: Case, asts: list[tuple[Any, ...]]) -> None:
    m = case.root
    g = analyze(m)
    state = nnx.state(m)
    for ast in asts:
        want = {p for p, (kind, value, _) in g.leaves.items() if expect(ast, p, kind, value)}
        f = to_nnx(ast)
        assert set(state.filter(f).paths) == want, ast
        assert set(nnx.state(m, f).paths) == want, ast
        if misplaced_everything([ast]):  # `...` then `...`: refused, the second would get nothing
            with pytest.raises(ValueError, match="must be the last filter"):
                nnx.split(m, f, ...)
            continue
        # a filter followed by `...` partitions the leaves exactly
        _, chosen, rest = nnx.split(m, f, ...)
        assert set(chosen.paths) == want
        assert set(rest.paths) == set(g.leaves) - want
    if misplaced_everything(asts):
        return
    # several filters: first match wins; disjoint, and the union is everything
    _, *parts = nnx.split(m, *(to_nnx(a) for a in asts), ...)
    got = [set(p.paths) for p in parts]
    assert got == expected_groups(g, asts)
    assert sum(len(p) for p in got) == len(g.leaves)
    assert set().union(*got) == set(g.leaves)
    by_state = state.split(*(to_nnx(a) for a in asts), ...)
    assert [set(p.paths) for p in by_state] == got
    assert nnx.State.merge(*by_state) == state


@SETTINGS
@given(case=graphs(), scale=st.integers(2, 4))
def test_state_flat_round_trip_and_tree_map(case: Case, scale: int) -> None:
    state = nnx.state(case.root)
    flat = state.flat_state()
    assert list(flat) == list(state.paths)
    for p, leaf in flat.items():
        kind = state.kind(p)
        if kind is None:
            assert not isinstance(leaf, nnx.Variable)
        else:
            assert type(leaf) is kind and leaf.metadata == state.metadata(p)
    again = nnx.State.from_flat_state(flat)
    assert again == state
    assert again.paths == state.paths
    assert [again.kind(p) for p in again.paths] == [state.kind(p) for p in state.paths]
    assert [again.metadata(p) for p in again.paths] == [state.metadata(p) for p in state.paths]

    mapped = jax.tree.map(lambda x: x * scale, state)
    assert isinstance(mapped, nnx.State)
    assert mapped.paths == state.paths
    assert [mapped.kind(p) for p in mapped.paths] == [state.kind(p) for p in state.paths]
    assert [mapped.metadata(p) for p in mapped.paths] == [state.metadata(p) for p in state.paths]
    for a, b in zip(mapped.leaves, state.leaves):
        assert_values_equal(a, np.asarray(b) * scale)
    diff = jax.tree.map(lambda a, b: a - b, mapped, state)
    for a, b in zip(diff.leaves, state.leaves):
        assert_values_equal(a, np.asarray(b) * (scale - 1))

    leaves, treedef = jax.tree.flatten(state)
    assert len(leaves) == len(state.paths)
    assert jax.tree.unflatten(treedef, leaves) == state
    # nested access reaches every leaf, by item and by attribute
    for p, value in zip(state.paths, state.leaves):
        node: Any = state
        for k in p:
            node = node[k]
        assert node is value
        node = state
        for k in p:
            node = getattr(node, k) if isinstance(k, str) else node[k]
        assert node is value


@SETTINGS
@given(case=graphs(), ast=filter_asts)
def test_pop_removes_exactly_the_matching_leaves_everywhere(case: Case, ast: tuple[Any, ...]) -> None:
    m = case.root
    before = analyze(m)
    doomed = {p for p, (kind, value, _) in before.leaves.items() if expect(ast, p, kind, value)}
    cells = before.shared()
    # every location of a doomed leaf: all holders of a doomed cell, or the array's own path
    locations = {loc for p in doomed for loc in (cells[p] if p in cells else {p})}
    if locations & before.tuple_held:
        event("pop: leaf in a tuple")
        with pytest.raises(TypeError, match="tuple"):
            nnx.pop(m, to_nnx(ast))
        return
    popped = nnx.pop(m, to_nnx(ast))
    assert set(popped.paths) == doomed
    for p, value in zip(popped.paths, popped.leaves):
        assert_values_equal(value, before.leaves[p][1])
    after = analyze(m)
    def cell_ids(g: Graph) -> set[int]:
        return {id(c) for c in g.objs.values() if isinstance(c, nnx.Variable)}

    doomed_cells = {k for k, p in before.first.items() if p in doomed and isinstance(before.objs[k], nnx.Variable)}
    assert cell_ids(after) == cell_ids(before) - doomed_cells
    def n_arrays(g: Graph) -> int:
        return sum(1 for kind, _, _ in g.leaves.values() if kind is None)

    assert n_arrays(after) == n_arrays(before) - sum(1 for p in doomed if before.leaves[p][0] is None)
    # modules and containers all stay; the next split agrees with the new graph
    assert {k for k, o in after.objs.items() if not isinstance(o, nnx.Variable)} == {
        k for k, o in before.objs.items() if not isinstance(o, nnx.Variable)
    }
    state = nnx.state(m)
    assert {p: state.kind(p) for p in state.paths} == after.kinds()


def _mutate(case: Case, data: st.DataObject) -> str:
    """Apply one random structural (or value) mutation to a reachable part of the graph."""
    g = analyze(case.root)
    reachable = [o for o in g.objs.values()]
    modules = [o for o in reachable if isinstance(o, nnx.Module)]
    lists = [o for o in reachable if isinstance(o, nnx.List)]
    dicts = [o for o in reachable if isinstance(o, nnx.Dict)]
    cells = [o for o in reachable if isinstance(o, nnx.Variable)]
    sub_slots = [(o, k) for o in modules for k, v in vars(o).items() if isinstance(v, nnx.Module)]
    ops = ["add_cell", "add_array", "add_module", "add_list", "add_static", "delete", "declared_cell"]
    ops += ["declared_value", "replace_array", "static_field"]
    if sub_slots:
        ops.append("replace_submodule")
    if lists:
        ops += ["append", "list_pop", "list_setitem"]
    if dicts:
        ops.append("dict_setitem")
    if cells:
        ops.append("set_metadata")
    op = data.draw(st.sampled_from(ops), label="mutation")
    target = data.draw(st.sampled_from(modules), label="target module")
    arr = data.draw(arrays, label="array")
    # setattr: new attributes on a random module, which no checker can know about
    if op == "add_cell":
        setattr(target, "new_cell", data.draw(st.sampled_from(KINDS))(arr))
    elif op == "add_array":
        setattr(target, "new_array", arr)
    elif op == "add_module":
        sub = Leaf(arr)
        setattr(target, "new_module", sub)
    elif op == "add_list":
        setattr(target, "new_list", [nnx.Param(arr), arr, data.draw(st.sampled_from(modules))])
    elif op == "add_static":
        setattr(target, "new_static", data.draw(st.integers(0, 9)))
        setattr(target, "new_static2", "changed" if getattr(target, "new_static2", None) == "orig" else "orig")
    elif op == "delete":
        names = sorted(vars(target))
        if not names:
            return "noop"
        name = data.draw(st.sampled_from(names))
        delattr(target, name)
    elif op == "declared_cell":
        if not isinstance(target, (Leaf, Stat)):
            return "noop"
        setattr(target, "w", nnx.Param(arr))  # a new cell replaces the old one (and unshares it)
    elif op == "static_field":
        if not isinstance(target, Stat):
            return "noop"
        # getattr: an earlier "delete" step may have removed the field.
        target.act = "tanh" if getattr(target, "act", None) != "tanh" else "relu"
    elif op == "declared_value":
        if not isinstance(target, (Leaf, Stat)):
            return "noop"
        target.w = arr  # written into the existing cell: not structural
    elif op == "replace_array":
        names = sorted(k for k, v in vars(target).items() if is_array(v))
        if not names:
            return "noop"
        setattr(target, data.draw(st.sampled_from(names)), arr)
    elif op == "replace_submodule":
        owner, key = data.draw(st.sampled_from(sub_slots))
        new = Stat(arr, jnp.zeros((2,)), "relu")
        setattr(owner, key, new)
    elif op == "append":
        data.draw(st.sampled_from(lists)).append(data.draw(st.sampled_from([nnx.Param(arr), arr, target])))
    elif op == "list_pop":
        lst = data.draw(st.sampled_from(lists))
        if not lst:
            return "noop"
        lst.pop()
    elif op == "list_setitem":
        lst = data.draw(st.sampled_from(lists))
        if not lst:
            return "noop"
        lst[0] = Count(arr)
    elif op == "dict_setitem":
        data.draw(st.sampled_from(dicts))[data.draw(st.sampled_from(DICT_KEYS))] = BagOf(arr)
    elif op == "set_metadata":
        data.draw(st.sampled_from(cells)).set_metadata(note=data.draw(st.integers(0, 3)))
    return op


def BagOf(arr: Any) -> Bag:
    bag = Bag()
    bag.x = arr
    bag.c = Count(arr)
    return bag


@SETTINGS
@given(case=graphs(), data=st.data())
def test_split_after_structural_mutation_sees_the_new_structure(case: Case, data: st.DataObject) -> None:
    m = case.root
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        nnx.split(m)  # the walk is cached now
        nnx.state(m)
        op = _mutate(case, data)
        event(op)
        graphdef, state = nnx.split(m)
        now = analyze(m)
        # The split matches an independent walk of the mutated graph ...
        assert {p: state.kind(p) for p in state.paths} == now.kinds()
        for p, value in zip(state.paths, state.leaves):
            assert_values_equal(value, now.leaves[p][1])
            assert state.metadata(p) == now.leaves[p][2]
        # ... its GraphDef is the one a full, uncached walk gives ...
        assert fresh_graphdef(m) == graphdef
        # ... and it rebuilds the mutated graph.
        assert_same_graph(now, analyze(nnx.merge(graphdef, state)))


@SETTINGS
@given(case=graphs(), data=st.data())
def test_walk_after_a_named_change_reuses_only_what_a_full_walk_would_give(case: Case, data: st.DataObject) -> None:
    """A walk after a change that named its node copies the unchanged subtrees from the
    walk before (nnx.rewalk). With every container a candidate (MIN_SPAN 1), each
    split after each mutation must equal a full walk: the same GraphDef, the same
    paths, kinds and metadata in the same order, and the very same cells."""
    m = case.root
    saved = rewalk.MIN_SPAN
    rewalk.MIN_SPAN = 1
    try:
        nnx.split(m)
        for _ in range(data.draw(st.integers(1, 4), label="mutations")):
            event(_mutate(case, data))
            assert_like_a_full_walk(m)
            graphdef2, state = nnx.split(m)
            assert_same_graph(analyze(m), analyze(nnx.merge(graphdef2, state)))
    finally:
        rewalk.MIN_SPAN = saved


@SETTINGS
@given(case=graphs(), data=st.data())
def test_cached_walk_survives_a_change_elsewhere_and_sees_one_here(case: Case, data: st.DataObject) -> None:
    """After an anonymous structural change the cached walk is re-checked, not redone:
    it is kept while this graph is unchanged, and replaced when it changed."""
    m = case.root
    nnx.split(m)
    epoch.bump()  # a change somewhere, not in m: walked again, now with a snapshot
    graphdef, _ = nnx.split(m)
    epoch.bump()
    assert nnx.split(m)[0] is graphdef  # re-checked against the snapshot, not walked
    op = _mutate(case, data)
    event(op)
    epoch.bump()  # as if the mutation had not named its node
    graphdef2, state = nnx.split(m)
    assert fresh_graphdef(m) == graphdef2
    assert_same_graph(analyze(m), analyze(nnx.merge(graphdef2, state)))


def test_generator_covers_the_interesting_shapes() -> None:
    """The strategy does produce cycles, shared submodules, shared cells and containers."""
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None, database=None)
    @given(case=graphs())
    def probe(case: Case) -> None:
        g = analyze(case.root)
        if g.has_cycle():
            seen.add("cycle")
        for first, locs in g.shared().items():
            if len(locs) > 1:
                kind = g.types[first]
                seen.add("shared cell" if issubclass(kind, nnx.Variable) else "shared node")
        kinds = set(g.kinds().values())
        if len(kinds) >= 3:
            seen.add("mixed kinds")
        if None in kinds:
            seen.add("plain array")
        if any(issubclass(t, nnx.List) for t in g.types.values()):
            seen.add("list")
        if any(issubclass(t, nnx.Dict) for t in g.types.values()):
            seen.add("dict")
        if any(isinstance(k, int) for p in g.leaves for k in p):
            seen.add("indexed leaf")

    probe()
    assert seen >= {"cycle", "shared cell", "shared node", "mixed kinds", "plain array", "list", "dict", "indexed leaf"}


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
