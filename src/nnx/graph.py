"""The graph layer: move a module graph to the pure ``(GraphDef, State)`` world and back.

``split`` walks the graph once, depth-first with attributes in sorted order.
Every Object, container and cell gets an index at its first visit; a second
visit (a shared submodule, a shared cell, a cycle) is recorded as a
reference to that index, so shared state appears once in the State and comes
back shared from ``merge``. The leaf order of the walk is the sorted order of
the State's paths, so the walk's list of cells lines up with the State's list
of leaves.

The walk is cached on the root object together with the structure epoch
(see ``nnx.epoch``): while no structural mutation happened anywhere, a split
is one list comprehension over the cached cells, and ``update`` is one zip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, TypeVar, Union, overload

import numpy as np

from nnx import epoch
from nnx.containers import Dict, List
from nnx.filters import Filter, Key, Path
from nnx.graphdef import GraphDef, Static
from nnx.objects import Object, Walkable, is_array, is_node
from nnx.refs import current_trace, trace_error
from nnx.state import HasState, Layout, State, freeze_metadata, path_order, path_str, thaw_metadata
from nnx.variables import Variable

if TYPE_CHECKING:
    import jax
    import numpy as np

    #: What ``iter_graph`` yields and descends into: containers, cells and arrays.
    _GraphNode = Union[Walkable, Variable[Any], jax.Array, np.ndarray[Any, Any]]

N = TypeVar("N")
S = TypeVar("S")
_ARRAY = ("array",)


class _Slot:
    """Where a plain array attribute lives, so that ``update`` can write it back."""

    __slots__ = ("owner", "key")

    def __init__(self, owner: Any, key: Any) -> None:
        self.owner = owner
        self.key = key

    @property
    def _trace(self) -> object:
        """The trace of the object holding the array (a plain array has none of its own)."""
        owner = self.owner
        return owner._trace if isinstance(owner, _Slot) else getattr(owner, "_nnx_trace", None)

    def _check_trace(self, action: str) -> None:
        """Refuse a write from a foreign trace, as a cell does."""
        made_in = self._trace
        now = current_trace()
        if made_in is not None and made_in is not now and made_in != now:
            raise trace_error(action, f"the array attribute {self.key!r} of {type(self.owner).__name__}")

    @property
    def _value(self) -> Any:
        owner = self.owner
        if isinstance(owner, Object):
            return owner.__dict__[self.key]
        if isinstance(owner, _Slot):
            return owner._value[self.key]
        return owner[self.key]

    @_value.setter
    def _value(self, value: Any) -> None:
        if isinstance(value, np.generic):  # 0-d NumPy arithmetic returns scalars; keep an array
            scalar: np.generic[Any] = value  # pyright: ignore[reportUnknownVariableType]
            value = np.asarray(scalar)
        owner, key = self.owner, self.key
        if isinstance(owner, Object):
            owner.__dict__[key] = value
        elif isinstance(owner, _Slot):  # an element of a tuple: rebuild the tuple
            items = owner._value
            owner._value = (*items[:key], value, *items[key + 1 :])
        # The plain list/dict methods skip the epoch bump of nnx.List/nnx.Dict; pyright
        # types these unbound methods of the unparameterised builtins as list[Unknown].
        elif isinstance(owner, list):  # an nnx.List, or the box around a root tuple
            list.__setitem__(owner, key, value)  # pyright: ignore[reportUnknownMemberType]
        else:
            dict.__setitem__(owner, key, value)  # pyright: ignore[reportUnknownMemberType]


# -- split ---------------------------------------------------------------------


def _walk(root: Any) -> tuple[GraphDef[Any], list[Any]]:
    """One full traversal: the GraphDef and the cells (or array slots) in leaf order."""
    graphdef, cells, _ = walk_nodes(root)
    return graphdef, cells


def walk_nodes(root: Any) -> tuple[GraphDef[Any], list[Any], list[Any]]:
    """``_walk`` plus every indexed node (Objects, containers, cells) in index order.

    The transforms use the node list to map the objects a traced function saw
    back to the caller's objects.
    """
    index: dict[int, int] = {}
    nodes: list[Any] = []
    paths: list[Path] = []
    kinds: list[Any] = []
    metas: list[Any] = []
    cells: list[Any] = []

    # ``value`` is Any, and pyright narrows Any by isinstance to ``Variable[Unknown]``
    # (``List[Unknown]``, ...); each branch binds the narrowed value once with its type.
    def visit(value: Any, path: Path, owner: Any, key: Any) -> tuple[Any, ...]:
        if isinstance(value, Variable):
            cell: Variable[Any] = value  # pyright: ignore[reportUnknownVariableType]
            i = index.get(id(cell))
            if i is not None:
                return ("ref", i)
            i = index[id(cell)] = len(index)
            nodes.append(cell)
            meta = freeze_metadata(cell._metadata)
            paths.append(path)
            kinds.append(type(cell))
            metas.append(meta)
            cells.append(cell)
            return ("var", type(cell), i, meta)
        if isinstance(value, (Object, List, Dict)):
            node: Object | List[Any] | Dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
            i = index.get(id(node))
            if i is not None:
                return ("ref", i)
            i = index[id(node)] = len(index)
            nodes.append(node)
            if isinstance(node, Object):
                items = sorted(node.__dict__.items())
                return ("object", type(node), i, tuple((k, visit(v, (*path, k), node, k)) for k, v in items))
            if isinstance(node, List):
                return ("list", i, tuple(visit(v, (*path, k), node, k) for k, v in enumerate(node)))
            for k in node:
                if not isinstance(k, (str, int)):
                    raise TypeError(
                        f"nnx.split: dict key {k!r} at '{path_str(path)}' is not a str or int; "
                        "state paths are made of attribute names, string keys and indices."
                    )
            items = sorted(node.items(), key=lambda kv: path_order((kv[0],)))
            return ("dict", i, tuple((k, visit(v, (*path, k), node, k)) for k, v in items))
        if is_array(value):
            paths.append(path)
            kinds.append(None)
            metas.append(())
            cells.append(_Slot(owner, key))
            return _ARRAY
        if type(value) is tuple and is_node(value):
            members: tuple[Any, ...] = value  # pyright: ignore[reportUnknownVariableType]
            slot = _Slot(owner, key)
            return ("tuple", tuple(visit(v, (*path, k), slot, k) for k, v in enumerate(members)))
        return ("static", Static(value))  # pyright: ignore[reportUnknownArgumentType]  # Any | tuple[Unknown, ...]

    if not isinstance(root, (Object, List, Dict, tuple)):
        raise TypeError(
            f"nnx.split takes a Module (or another nnx.Object, nnx.List, nnx.Dict or tuple of them); "
            f"got {type(root).__name__}. Wrap plain values in a Module attribute first."
        )
    # A root tuple lives in a one-element box, so slots of arrays inside it can read it.
    node = visit(root, (), [root], 0)
    layout = Layout(tuple(paths), tuple(kinds), tuple(metas))
    return GraphDef(node, layout), cells, nodes


def _walk_cached(root: Any) -> tuple[GraphDef[Any], list[Any]]:
    """``_walk``, cached on an Object root while none of the walked nodes changed structure."""
    if isinstance(root, Object):
        cache = getattr(root, "_nnx_cache", None)
        now = epoch.current()
        if cache is not None:
            then, graphdef, cells, node_ids = cache
            if then == now:
                return graphdef, cells
            if not epoch.changed_since(then, node_ids):  # something else changed
                object.__setattr__(root, "_nnx_cache", (now, graphdef, cells, node_ids))
                return graphdef, cells
        graphdef, cells, nodes = walk_nodes(root)
        object.__setattr__(root, "_nnx_cache", (now, graphdef, cells, _ids(nodes)))
        return graphdef, cells
    return _walk(root)


class _ids(frozenset[int]):
    """The ids of a walk's nodes; holds the nodes too, so that no id is reused while cached."""

    __slots__ = ("nodes",)
    nodes: list[Any]

    def __new__(cls, nodes: list[Any]) -> _ids:
        made = super().__new__(cls, map(id, nodes))
        made.nodes = nodes
        return made


def _parts(
    graphdef: GraphDef[Any], cells: list[Any], filters: tuple[Filter, ...], *, exhaustive: bool, where: str
) -> list[State[Any]]:
    values = [c._value for c in cells]
    if not filters:
        return [State._make(graphdef.layout, values)]

    def value_at(i: int) -> Any:
        return cells[i] if isinstance(cells[i], Variable) else values[i]

    layouts, groups = graphdef.layout.split(filters, value_at, exhaustive=exhaustive, where=where)
    return [State._make(lay, [values[i] for i in idx]) for lay, idx in zip(layouts, groups)]


# Each operation has one overload per arity (0 to 4 filters) so that checkers know
# the tuple length, twice: first for a module whose generated stub names its concrete
# State class (``HasState``, see nnx.stubgen; pyright only), then for any node.
# The first set is narrower than the second, which the overlap checks cannot see.
@overload
def split(node: HasState[N, S], /) -> tuple[GraphDef[N], S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def split(node: HasState[N, S], f1: Filter, /) -> tuple[GraphDef[N], S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def split(node: HasState[N, S], f1: Filter, f2: Filter, /) -> tuple[GraphDef[N], S, S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def split(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, /) -> tuple[GraphDef[N], S, S, S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def split(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, f4: Filter, /) -> tuple[GraphDef[N], S, S, S, S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def split(node: N, /) -> tuple[GraphDef[N], State[N]]: ...
@overload
def split(node: N, f1: Filter, /) -> tuple[GraphDef[N], State[N]]: ...
@overload
def split(node: N, f1: Filter, f2: Filter, /) -> tuple[GraphDef[N], State[N], State[N]]: ...
@overload
def split(node: N, f1: Filter, f2: Filter, f3: Filter, /) -> tuple[GraphDef[N], State[N], State[N], State[N]]: ...
@overload
def split(node: N, f1: Filter, f2: Filter, f3: Filter, f4: Filter, /) -> tuple[GraphDef[N], State[N], State[N], State[N], State[N]]: ...
@overload
def split(node: object, /, *filters: Filter) -> tuple[Any, ...]: ...
def split(node: Any, /, *filters: Filter) -> tuple[Any, ...]:
    """Split a module into its GraphDef and one State per filter.

    Every leaf must match one of the filters (the first that matches takes it);
    end with ``...`` to collect the rest. With no filters, one State holds all.
    """
    graphdef, cells = _walk_cached(node)
    return (graphdef, *_parts(graphdef, cells, filters, exhaustive=True, where="nnx.split"))


@overload
def state(node: HasState[N, S], /) -> S: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def state(node: HasState[N, S], f1: Filter, /) -> S: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def state(node: HasState[N, S], f1: Filter, f2: Filter, /) -> tuple[S, S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def state(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, /) -> tuple[S, S, S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def state(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, f4: Filter, /) -> tuple[S, S, S, S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def state(node: N, /) -> State[N]: ...
@overload
def state(node: N, f1: Filter, /) -> State[N]: ...
@overload
def state(node: N, f1: Filter, f2: Filter, /) -> tuple[State[N], State[N]]: ...
@overload
def state(node: N, f1: Filter, f2: Filter, f3: Filter, /) -> tuple[State[N], State[N], State[N]]: ...
@overload
def state(node: N, f1: Filter, f2: Filter, f3: Filter, f4: Filter, /) -> tuple[State[N], State[N], State[N], State[N]]: ...
@overload
def state(node: N, /, *filters: Filter) -> tuple[State[N], ...]: ...
def state(node: Any, /, *filters: Filter) -> Any:
    """The module's state, or one State per filter (leaves matching none are left out)."""
    graphdef, cells = _walk_cached(node)
    parts = _parts(graphdef, cells, filters, exhaustive=False, where="nnx.state")
    return parts[0] if len(parts) == 1 else tuple(parts)


def graphdef(node: N, /) -> GraphDef[N]:
    """The GraphDef of a module (the static half of ``split``)."""
    return _walk_cached(node)[0]


# -- merge ---------------------------------------------------------------------


def _gather(graphdef: GraphDef[Any], states: tuple[State[Any], ...], where: str) -> list[Any]:
    """The leaves of ``states`` in the GraphDef's leaf order; raises if they do not fit."""
    layout = graphdef.layout
    if len(states) == 1 and states[0]._layout == layout:
        return states[0].leaves
    for s in states:
        if not isinstance(s, State):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
            raise TypeError(f"{where}: expected State arguments, got {type(s).__name__}.")
    key = ("gather", tuple(s._layout for s in states))
    plan: list[tuple[int, int]] | None = layout._splits.get(key)
    if plan is None:
        where_is: dict[Path, tuple[int, int]] = {}
        for si, s in enumerate(states):
            for li, p in enumerate(s.paths):
                where_is[p] = (si, li)
        missing = [path_str(p) for p in layout.paths if p not in where_is]
        expected = set(layout.paths)
        unexpected = [path_str(p) for p in where_is if p not in expected]
        if missing or unexpected:
            raise ValueError(
                f"{where}: the states do not fit the GraphDef of {graphdef.type.__name__}: "
                f"missing paths {missing}, unexpected paths {unexpected}. Pass every State "
                "that split produced for this GraphDef (e.g. merge(graphdef, params, rest))."
            )
        plan = [where_is[p] for p in layout.paths]
        layout._splits[key] = plan
    leaves = [s.leaves for s in states]
    return [leaves[si][li] for si, li in plan]


def _build(graphdef: GraphDef[N], leaves: list[Any]) -> tuple[N, list[Any] | None, list[Any]]:
    built: dict[int, Any] = {}
    root, cells = build_node(graphdef.node, leaves, built, None)
    return root, cells, list(built.values())


def build_node(
    node: tuple[Any, ...], leaves: list[Any], built: dict[int, Any], reuse: dict[int, Any] | None
) -> tuple[Any, list[Any] | None]:
    """Build the graph that ``node`` describes, taking leaf values in order from ``leaves``.

    ``built`` maps node indices to nodes already built (a ``("ref", i)`` resolves
    there); ``reuse`` maps indices to existing objects and cells to refill in place
    instead of creating new ones (how a transform lands structural changes on the
    caller's objects). Returns the root and the new graph's cells, or ``None`` for the
    cells when a plain array attribute (which has no cell) was built.
    """
    cells: list[Any] = []
    plain_arrays = [False]
    feed = iter(leaves)
    trace = current_trace()
    new = object.__new__
    set_trace = Object._nnx_trace.__set__  # type: ignore[attr-defined]  # the slot's descriptor

    def build(node: tuple[Any, ...]) -> Any:
        tag = node[0]
        if tag == "var":
            _, kind, i, meta = node
            cell = reuse.get(i) if reuse else None
            if cell is None:
                cell = new(kind)
                cell._trace = trace
            cell._value = next(feed)
            cell._metadata = thaw_metadata(meta) if meta else {}
            built[i] = cell
            cells.append(cell)
            return cell
        if tag == "object":
            _, type_, i, attrs = node
            obj = reuse.get(i) if reuse else None
            if obj is None:
                obj = new(type_)
                set_trace(obj, trace)
            else:
                obj.__dict__.clear()
            built[i] = obj
            slots = obj.__dict__
            for name, sub in attrs:
                slots[name] = build(sub)
            return obj
        if tag == "ref":
            return built[node[1]]
        if tag == "static":
            return node[1].value
        if tag == "array":
            plain_arrays[0] = True
            return next(feed)
        # Containers are made without __init__ and filled with the plain list/dict
        # methods (no epoch bump); pyright sees the unparameterised classes as [Unknown].
        if tag == "list":
            lst: List[Any] | None = reuse.get(node[1]) if reuse else None
            if lst is None:
                lst = List.__new__(List)  # pyright: ignore[reportUnknownVariableType]
            else:
                list.clear(lst)  # pyright: ignore[reportUnknownMemberType]
            built[node[1]] = lst
            list.extend(lst, [build(sub) for sub in node[2]])  # pyright: ignore[reportUnknownMemberType]
            return lst
        if tag == "dict":
            dct: Dict[Any, Any] | None = reuse.get(node[1]) if reuse else None
            if dct is None:
                dct = Dict.__new__(Dict)  # pyright: ignore[reportUnknownVariableType]
            else:
                dict.clear(dct)  # pyright: ignore[reportUnknownMemberType]
            built[node[1]] = dct
            for k, sub in node[2]:
                dict.__setitem__(dct, k, build(sub))  # pyright: ignore[reportUnknownMemberType]
            return dct
        return tuple(build(sub) for sub in node[1])  # "tuple"

    root = build(node)
    return root, (None if plain_arrays[0] else cells)


def merge(graphdef: GraphDef[N], state: State[Any], /, *states: State[Any]) -> N:
    """Rebuild a module from its GraphDef and the States ``split`` produced.

    The result is a new object graph with new cells; sharing and cycles are
    restored exactly as they were when the module was split.
    """
    if not isinstance(graphdef, GraphDef):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
        raise TypeError(f"nnx.merge: the first argument must be a GraphDef, got {type(graphdef).__name__}.")
    leaves = _gather(graphdef, (state, *states), "nnx.merge")
    root, cells, nodes = _build(graphdef, leaves)
    if cells is not None and isinstance(root, Object):
        object.__setattr__(root, "_nnx_cache", (epoch.current(), graphdef, cells, _ids(nodes)))
    return root


# -- update --------------------------------------------------------------------


def update(node: Any, /, *states: State[Any]) -> None:
    """Write the values of ``states`` into the module's existing cells, in place.

    Every path of every state must exist in the module, hold the same kind of
    cell and have the same shape; nothing is written unless all of them fit.
    """
    graphdef, cells = _walk_cached(node)
    layout = graphdef.layout
    trace = current_trace()
    writes: list[tuple[list[Any], list[Any]]] = []
    for s in states:
        if not isinstance(s, State):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
            raise TypeError(f"nnx.update: expected State arguments, got {type(s).__name__}.")
        targets = cells if s._layout == layout else [cells[i] for i in _update_plan(layout, s._layout, graphdef)]
        values = s.leaves
        for position, (cell, value) in enumerate(zip(targets, values)):
            old = cell._value
            if old is not value:
                shape = getattr(old, "shape", None)
                if shape is not None and shape != getattr(value, "shape", shape):
                    _shape_error(graphdef, s.paths[position], shape, value)
            owner_trace = cell._trace
            if owner_trace is not trace and owner_trace is not None and owner_trace != trace:
                cell._check_trace("update")
        writes.append((targets, values))
    for targets, values in writes:
        for cell, value in zip(targets, values):
            cell._value = value


def _update_plan(layout: Layout, sub: Layout, graphdef: GraphDef[Any]) -> list[int]:
    key = ("update", sub)
    plan: list[int] | None = layout._splits.get(key)
    if plan is None:
        position = {p: i for i, p in enumerate(layout.paths)}
        missing = [path_str(p) for p in sub.paths if p not in position]
        if missing:
            raise ValueError(
                f"nnx.update: {graphdef.type.__name__} has no state at {missing}; its state paths "
                f"are {[path_str(p) for p in layout.paths]}. Update with a State taken from this "
                "module (nnx.state / nnx.split) or rename the paths."
            )
        plan = [position[p] for p in sub.paths]
        for p, i, kind in zip(sub.paths, plan, sub.kinds):
            have = layout.kinds[i]
            if kind is not None and have is not None and not issubclass(kind, have) and not issubclass(have, kind):
                raise TypeError(
                    f"nnx.update: '{path_str(p)}' of {graphdef.type.__name__} is a {have.__name__}, "
                    f"but the State holds a {kind.__name__} there."
                )
        layout._splits[key] = plan
    return plan


def _shape_error(graphdef: GraphDef[Any], path: Path, shape: Any, value: Any) -> None:
    raise ValueError(
        f"nnx.update: '{path_str(path)}' of {graphdef.type.__name__} has shape "
        f"{tuple(shape)} but the State holds shape {tuple(value.shape)}; nothing was updated. "
        "Reshape the value or re-create the module with the new shape."
    )


# -- pop, clone, iteration -----------------------------------------------------


@overload
def pop(node: HasState[N, S], f1: Filter, /) -> S: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def pop(node: HasState[N, S], f1: Filter, f2: Filter, /) -> tuple[S, S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def pop(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, /) -> tuple[S, S, S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def pop(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, f4: Filter, /) -> tuple[S, S, S, S]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
@overload
def pop(node: N, f1: Filter, /) -> State[N]: ...
@overload
def pop(node: N, f1: Filter, f2: Filter, /) -> tuple[State[N], State[N]]: ...
@overload
def pop(node: N, f1: Filter, f2: Filter, f3: Filter, /) -> tuple[State[N], State[N], State[N]]: ...
@overload
def pop(node: N, f1: Filter, f2: Filter, f3: Filter, f4: Filter, /) -> tuple[State[N], State[N], State[N], State[N]]: ...
@overload
def pop(node: N, /, *filters: Filter) -> tuple[State[N], ...]: ...
def pop(node: Any, /, *filters: Filter) -> Any:
    """Remove the leaves matching ``filters`` from the module and return them as States."""
    if not filters:
        raise TypeError("nnx.pop needs at least one filter, e.g. nnx.pop(model, nnx.Intermediate).")
    graphdef, cells = _walk_cached(node)
    values = [c._value for c in cells]

    def value_at(i: int) -> Any:
        return cells[i] if isinstance(cells[i], Variable) else values[i]

    layouts, groups = graphdef.layout.split(filters, value_at, exhaustive=False, where="nnx.pop")
    doomed = [cells[i] for idx in groups for i in idx]
    if doomed:
        _remove(node, doomed)
    parts = [State._make(lay, [values[i] for i in idx]) for lay, idx in zip(layouts, groups)]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _remove(root: Walkable, doomed: list[Variable[Any] | _Slot]) -> None:
    """Delete every reference to the doomed cells (and array slots) from the graph."""
    seen: set[int] = set()
    doomed_cells = {id(c) for c in doomed if isinstance(c, Variable)}
    doomed_slots = {(id(c.owner), c.key) for c in doomed if isinstance(c, _Slot)}
    if any(isinstance(c, _Slot) and isinstance(c.owner, _Slot) for c in doomed):
        raise TypeError("nnx.pop cannot remove an array stored inside a tuple; use an nnx.List.")

    def is_doomed(owner: Any, key: Any, value: Any) -> bool:
        if isinstance(value, Variable):  # pyright narrows Any to Variable[Unknown]
            return id(value) in doomed_cells  # pyright: ignore[reportUnknownArgumentType]
        return (id(owner), key) in doomed_slots

    def walk(node: Walkable) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        items: list[tuple[Any, Any]] = list(node.__dict__.items()) if isinstance(node, Object) else list(node.items()) if isinstance(node, Dict) else list(enumerate(node))
        drop = [k for k, v in items if is_doomed(node, k, v)]
        for k in sorted(drop, key=lambda k: path_order((k,)), reverse=True):
            if isinstance(node, Object):
                del node.__dict__[k]
            elif isinstance(node, List):  # plain list/dict methods: no epoch bump per key
                list.__delitem__(node, k)  # pyright: ignore[reportUnknownMemberType]
            elif isinstance(node, Dict):
                dict.__delitem__(node, k)  # pyright: ignore[reportUnknownMemberType]
            else:
                raise TypeError("nnx.pop cannot remove a leaf stored inside a tuple; use an nnx.List.")
        for k, v in items:
            if k not in drop and (isinstance(v, (Object, List, Dict)) or (type(v) is tuple and is_node(v))):
                walk(v)  # pyright: ignore[reportUnknownArgumentType]  # v: Any, narrowed to List[Unknown] (...)

    walk(root)
    epoch.bump()


def clone(node: N, /) -> N:
    """A deep copy of the module graph with new cells; sharing and cycles preserved."""
    graphdef, state_ = split(node)
    return merge(graphdef, state_)


def iter_graph(node: Any, /) -> Iterator[tuple[Path, Any]]:
    """Every node of the graph once, pre-order: ``(path, value)`` for the root, Objects,
    containers, cells and arrays. Shared nodes are yielded at their first path."""
    seen: set[int] = set()

    def walk(path: Path, value: _GraphNode) -> Iterator[tuple[Path, Any]]:
        if isinstance(value, (Object, List, Dict, Variable)):
            if id(value) in seen:
                return
            seen.add(id(value))
        yield path, value
        if isinstance(value, Object):
            children: list[tuple[Key, Any]] = sorted(value.__dict__.items())
        elif isinstance(value, Dict):
            children = sorted(value.items(), key=lambda kv: path_order((kv[0],)))
        elif isinstance(value, (List, tuple)):
            children = list(enumerate(value))
        else:
            return
        for k, v in children:
            if is_node(v):
                yield from walk((*path, k), v)

    yield from walk((), node)
