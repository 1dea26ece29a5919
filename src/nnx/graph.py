# The overloads of split/state/pop go from narrow (a State class that declares its parts,
# then one that does not) to general (any node); the checkers' overlap rule flags every
# narrow one although the order is what picks the right one.
# mypy: disable-error-code="overload-overlap"
# pyright: reportOverlappingOverload=false
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

from itertools import chain, compress, repeat
from operator import attrgetter, is_
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Callable, Container, Iterator, Literal, LiteralString, TypeVar, Union, overload

import jax
import numpy as np
from typing_extensions import deprecated

from nnx import epoch, rewalk
from nnx.containers import Dict, List
from nnx.filters import Filter, Key, Path
from nnx.graphdef import GraphDef, Static
from nnx.graph_state import GraphState, unbundle
from nnx.roots import PLAIN, refuse_array_writes, refuse_pop, tracked
from nnx.modes import SWITCHED, check_tree
from nnx.objects import Object, Walkable, is_array, is_node
from nnx.refs import current_trace, trace_error
from nnx.state import HasState, Layout, State, freeze_metadata, path_order, path_str, thaw_metadata
from nnx.variables import BatchStat, Cache, Intermediate, LoRAParam, Param, Variable

if TYPE_CHECKING:
    from nnx.state import NoState
    from nnx.state import Parts as _Parts

    #: What ``iter_graph`` yields and descends into: containers, cells and arrays.
    _GraphNode = Union[Walkable, Variable[Any], jax.Array, np.ndarray[Any, Any]]

N = TypeVar("N")
S = TypeVar("S")
P1 = TypeVar("P1")
P2 = TypeVar("P2")
R = TypeVar("R")
C = TypeVar("C", bound=str)
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

# What a value is to the walk, decided once per type.
_VAR, _OBJECT, _LIST, _DICT, _ARRAY_LEAF, _TUPLE, _STATIC = range(7)
_categories: dict[type, int] = {}


def _category(value: Any) -> int:
    """The category of ``value``'s type (decided on its first instance: ``jax.Array``
    recognises tracers by instance, not by subclass)."""
    kind: type[Any] = type(value)  # pyright: ignore[reportUnknownVariableType]  # type() of Any
    category = _categories.get(kind)
    if category is None:
        if isinstance(value, Variable):
            category = _VAR
        elif isinstance(value, Object):
            category = _OBJECT
        elif isinstance(value, List):
            category = _LIST
        elif isinstance(value, Dict):
            category = _DICT
        elif is_array(value):
            category = _ARRAY_LEAF
        elif kind is tuple:
            category = _TUPLE  # a node only if it holds one (checked per value)
        else:
            category = _STATIC
        _categories[kind] = category
    return category


def _walk(root: Any) -> tuple[GraphDef[Any], list[Any]]:
    """One full traversal: the GraphDef and the cells (or array slots) in leaf order."""
    graphdef, cells, _, _, _ = _walk_indexed(root)
    return graphdef, cells


def walk_nodes(root: Any) -> tuple[GraphDef[Any], list[Any], list[Any]]:
    """``_walk`` plus every indexed node (Objects, containers, cells) in index order.

    The walk keeps its own stack instead of recursing, so a graph of any depth
    (a chain of thousands of submodules) splits. The transforms use the node
    list to map the objects a traced function saw back to the caller's objects.
    """
    graphdef, cells, nodes, _, _ = _walk_indexed(root)
    return graphdef, cells, nodes


def _walk_indexed(
    root: Any, previous: tuple[rewalk.Walked, list[int]] | None = None
) -> tuple[GraphDef[Any], list[Any], list[Any], dict[int, int], rewalk.Walked]:
    """``walk_nodes`` plus the index it built (node id -> node index: a cache's set of
    ids) and what a later walk can reuse of this one.

    ``previous``: an earlier walk of this root and the ids of the nodes changed
    since; the subtrees that did not change are copied from it (see ``nnx.rewalk``).

    Paths are not built as tuples during the walk: a container's path is a
    *link* ``(its parent's link, its key)`` (the root's is ``()``), made in
    constant time however deep the container sits, and each leaf records the
    link of its path. The Layout turns the links into tuples only if its paths
    are read (``_unlink_all``), so the walk stays linear in the depth.
    """
    if not isinstance(root, (Object, List, Dict, tuple)):
        raise TypeError(
            f"nnx.split takes a Module (or another nnx.Object, nnx.List, nnx.Dict or tuple of them); "
            f"got {type(root).__name__}. Wrap plain values in a Module attribute first."
        )
    index: dict[int, int] = {}
    nodes: list[Any] = []
    paths: list[Any] = []  # each leaf's path as a link
    kinds: list[Any] = []
    metas: list[Any] = []
    cells: list[Any] = []
    spans: dict[int, rewalk.Span] = {}
    walked = rewalk.Walked(nodes, index, cells, paths, kinds, metas, spans)
    take: Callable[[Any, Any], tuple[Any, ...] | None] | None = None  # set after the root is entered
    min_span = rewalk.MIN_SPAN
    # A frame is one container being described: [children iterator, its path's link, the owner
    # of its array slots, descriptions so far, keyed?, its key in the parent, tag, type, index,
    # where its leaves start].
    stack: list[list[Any]] = []

    def enter(value: Any, category: int, path: Any, owner: Any, key: Any) -> tuple[Any, ...] | None:
        """Open a frame for a container (``None``), or describe one already seen."""
        if category == _TUPLE:
            stack.append([iter(enumerate(value)), path, _Slot(owner, key), [], False, key, "tuple", None, -1, 0])  # pyright: ignore[reportUnknownArgumentType]
            return None
        i = index.get(id(value))
        if i is not None:
            return ("ref", i)
        if take is not None:
            taken = take(value, path)
            if taken is not None:
                return taken
        i = index[id(value)] = len(nodes)
        nodes.append(value)
        if category == _OBJECT:
            items: Any = sorted(value.__dict__.items())
            stack.append([iter(items), path, value, [], True, key, "object", type(value), i, len(cells)])
        elif category == _LIST:
            stack.append([iter(enumerate(value)), path, value, [], False, key, "list", None, i, len(cells)])  # pyright: ignore[reportUnknownArgumentType]
        else:
            for k in value:
                if not isinstance(k, (str, int)):
                    raise TypeError(
                        f"nnx.split: dict key {k!r} at '{path_str(_unlink(path))}' is not a str or int; "
                        "state paths are made of attribute names, string keys and indices."
                    )
            items = sorted(value.items(), key=lambda kv: path_order((kv[0],)))
            stack.append([iter(items), path, value, [], True, key, "dict", None, i, len(cells)])
        return None

    categories = _categories
    if type(root) is tuple and not is_node(root):  # pyright: ignore[reportUnknownArgumentType]
        node: tuple[Any, ...] = ("static", Static(root))  # pyright: ignore[reportUnknownArgumentType]
    else:
        # A root tuple lives in a one-element box, so slots of arrays inside it can read it.
        enter(root, _category(root), (), [root], 0)
        node = ()
        if previous is not None:  # not before: the root holds the change, so it is never reused
            take = rewalk.Rewalk(*previous, walked).take
    while stack:
        frame = stack[-1]
        it, path, owner, described, keyed = frame[0], frame[1], frame[2], frame[3], frame[4]
        for k, v in it:
            kind: type[Any] = type(v)  # pyright: ignore[reportUnknownVariableType]  # type() of Any
            category = categories.get(kind)
            if category is None:
                category = _category(v)
            if category == _VAR:
                vid = id(v)
                i = index.get(vid)
                if i is None:
                    i = index[vid] = len(nodes)
                    nodes.append(v)
                    metadata = v._metadata
                    meta = freeze_metadata(metadata) if metadata else ()
                    paths.append((path, k))
                    kinds.append(kind)
                    metas.append(meta)
                    cells.append(v)
                    d: tuple[Any, ...] = ("var", kind, i, meta)
                else:
                    d = ("ref", i)
            elif category == _OBJECT:  # the common container, entered inline
                vid = id(v)
                i = index.get(vid)
                if i is not None:
                    d = ("ref", i)
                else:
                    sub = (path, k)
                    if take is not None:
                        taken = take(v, sub)
                        if taken is not None:
                            described.append((k, taken) if keyed else taken)
                            continue
                    i = index[vid] = len(nodes)
                    nodes.append(v)
                    leaf_start = len(cells)
                    inner: list[Any] = []
                    items = iter(sorted(v.__dict__.items()))
                    # A leaf module (cells and static values only: most layers) is described
                    # right here, as the cell branch above does, without a frame of its own;
                    # at its first other child it gets one, which resumes from that child.
                    for ck, cv in items:
                        ckind: type[Any] = type(cv)  # pyright: ignore[reportUnknownVariableType]  # type() of Any
                        ccat = categories.get(ckind)
                        if ccat == _VAR:
                            cid = id(cv)
                            j = index.get(cid)
                            if j is None:
                                j = index[cid] = len(nodes)
                                nodes.append(cv)
                                metadata = cv._metadata
                                meta = freeze_metadata(metadata) if metadata else ()
                                paths.append((sub, ck))
                                kinds.append(ckind)
                                metas.append(meta)
                                cells.append(cv)
                                inner.append((ck, ("var", ckind, j, meta)))
                            else:
                                inner.append((ck, ("ref", j)))
                        elif ccat == _STATIC:
                            inner.append((ck, ("static", Static(cv))))
                        else:
                            stack.append([chain(((ck, cv),), items), sub, v, inner, True, k, "object", kind, i, leaf_start])
                            break
                    else:
                        d = ("object", kind, i, tuple(inner))
                        if len(nodes) - i >= min_span:
                            spans[i] = rewalk.Span(len(nodes), leaf_start, len(cells), d, sub)
                        described.append((k, d) if keyed else d)
                        continue
                    break  # describe the child first; this iterator resumes after it
            elif category == _ARRAY_LEAF:
                paths.append((path, k))
                kinds.append(None)
                metas.append(())
                cells.append(_Slot(owner, k))
                d = _ARRAY
            elif category == _STATIC or (category == _TUPLE and not is_node(v)):
                d = ("static", Static(v))
            else:
                entered = enter(v, category, (path, k), owner, k)
                if entered is None:
                    break  # describe the child first; this iterator resumes after it
                d = entered
            described.append((k, d) if keyed else d)
        else:
            stack.pop()
            tag = frame[6]
            members = tuple(described)
            if tag == "object":
                node = ("object", frame[7], frame[8], members)
            elif tag == "tuple":
                node = ("tuple", members)
            else:
                node = (tag, frame[8], members)
            if frame[8] >= 0 and len(nodes) - frame[8] >= min_span:
                spans[frame[8]] = rewalk.Span(len(nodes), frame[9], len(cells), node, frame[1])
            if stack:
                parent = stack[-1]
                parent[3].append((frame[5], node) if parent[4] else node)
    layout = Layout.deferred(lambda: _unlink_all(paths), tuple(kinds), tuple(metas))
    # The leaves' shapes and dtypes, read in one C-level pass rather than one cell at a time.
    return GraphDef(node, layout, _avals(list(map(_GET_VALUE, cells)))), cells, nodes, index, walked


def _unlink(link: Any) -> Path:
    """The path a walk's link stands for (see ``_walk_indexed``)."""
    keys: list[Key] = []
    while link:
        link, key = link
        keys.append(key)
    return tuple(reversed(keys))


def _unlink_all(links: list[Any]) -> tuple[Path, ...]:
    """The paths of many links; each prefix's tuple is built once and extended."""
    done: dict[int, Path] = {}
    out: list[Path] = []
    for link in links:
        up: list[Any] = []
        node = link
        while node and id(node) not in done:
            up.append(node)
            node = node[0]
        path = done[id(node)] if node else ()
        for node in reversed(up):
            path = done[id(node)] = (*path, node[1])
        out.append(path)
    return tuple(out)


def _walk_cached(root: Any) -> tuple[GraphDef[Any], list[Any]]:
    """``_walk``, cached on an Object root while none of the walked nodes changed structure.

    A structural change that names its node (an attribute set, a container
    mutated) invalidates the walk of the graphs holding that node. An anonymous
    one (``epoch.bump()``: ``nnx.pop``, a transform landing its changes) could
    have touched any graph: the walk is then re-checked against a snapshot of
    every node's children (C-level comparisons, no walk). The snapshot is taken
    only for roots that have seen an anonymous change, so that graphs that
    never do pay nothing for it.
    """
    if isinstance(root, Object):
        cache = getattr(root, "_nnx_cache", None)
        now = epoch.current()
        snapshot = False
        previous: tuple[rewalk.Walked, list[int]] | None = None
        if cache is not None:
            then, graphdef, cells, node_ids = cache
            if then == now:
                return graphdef, cells
            change = epoch.change_since(then, node_ids)
            if change == epoch.NONE or (change == epoch.UNKNOWN and node_ids.unchanged()):
                object.__setattr__(root, "_nnx_cache", (now, graphdef, cells, node_ids))
                return graphdef, cells
            snapshot = change == epoch.UNKNOWN
            if change == epoch.CHANGED and node_ids.walked is not None:
                changed_ids = epoch.changes_since(then)
                # Every change named its node: reuse the rest, if some big part is untouched.
                changed = None if changed_ids is None else rewalk.changed_indices(node_ids.walked, changed_ids)
                if changed is not None:
                    previous = (node_ids.walked, changed)
            # Released before walking (unless reused): the new walk then reuses their memory.
            object.__setattr__(root, "_nnx_cache", None)
            del cache, graphdef, cells, node_ids
        graphdef, cells, nodes, ids, walked = _walk_indexed(root, previous)
        node_ids = _NodeIds(nodes, snapshot=snapshot, ids=ids, walked=walked)
        object.__setattr__(root, "_nnx_cache", (now, graphdef, cells, node_ids))
        return graphdef, cells
    return _walk(root)


_UNASKED, _MIXED = object(), object()
_VALUES: Any = dict.values  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # on the plain dict: nnx.Dict and Object.__dict__ alike
_METADATA = repeat("_metadata")
_AS_TUPLE: Any = tuple  # typed Any: the snapshots are tuples of whatever the nodes hold


class _NodeIds:
    """The nodes of a walk: their ids as a set made on first use (most caches never
    need it), and optionally a snapshot of their children to re-check the walk.

    Holds the nodes too, so that no id is reused while the walk is cached.
    A walk passes the index it built (id -> node index) as the ids.
    """

    __slots__ = ("nodes", "_ids", "_parts", "_snapshot", "_alive", "trace", "walked", "known")

    def __init__(
        self,
        nodes: list[Any],
        *,
        snapshot: bool = False,
        ids: Container[int] | None = None,
        walked: rewalk.Walked | None = None,
    ) -> None:
        self.nodes = nodes
        self._ids: Container[int] | None = ids
        #: The walk itself, for the next walk after a change to reuse (``None`` after a merge).
        self.walked = walked
        #: The values split last read from the cells, with their avals: while the cells
        #: still hold exactly these values (an identity test), their avals need no reading.
        self.known: tuple[list[Any], tuple[Any, ...]] | None = None
        #: The trace all the walk's cells were made in (``_MIXED`` if not one), once asked.
        #: A cell's trace is fixed when it is made, so it holds while the walk is cached.
        self.trace: object = _UNASKED
        self._parts: tuple[list[Any], ...] | None = None
        self._snapshot: tuple[list[Any], ...] | None = None
        if snapshot:
            category = list(map(_categories.__getitem__, map(type, nodes)))
            objects, lists, dicts, cells = parts = tuple(
                list(compress(nodes, map(c.__eq__, category))) for c in (_OBJECT, _LIST, _DICT, _VAR)
            )
            self._parts = parts
            self._snapshot = self._read()
            # The children compared by id stay alive with the snapshot, so no id is reused.
            self._alive: Any = (
                list(map(_AS_TUPLE, map(_VALUES, map(vars, objects)))),  # pyright: ignore[reportUnknownArgumentType]
                list(map(_AS_TUPLE, lists)),  # pyright: ignore[reportUnknownArgumentType]
                list(map(_AS_TUPLE, map(_VALUES, dicts))),  # pyright: ignore[reportUnknownArgumentType]
                list(map(getattr, cells, _METADATA)),
            )

    def _read(self) -> tuple[list[Any], ...]:
        """What a walk reads of each node, by identity: the keys and children of
        Objects and containers, and the metadata dict of cells.

        Each kind of container is read as flat lists (every container's length,
        then all keys, then all children's ids, one after another): equal lengths
        cut equal flat lists into equal pieces, and flat lists of ints compare
        without a tuple per container.
        """
        assert self._parts is not None
        objects, lists, dicts, cells = self._parts
        slots = list(map(vars, objects))
        flat = chain.from_iterable
        return (
            list(map(len, slots)),
            list(flat(slots)),
            list(map(id, flat(map(_VALUES, slots)))),
            list(map(len, lists)),
            list(map(id, flat(lists))),
            list(map(len, dicts)),
            list(flat(dicts)),
            list(map(id, flat(map(_VALUES, dicts)))),
            list(map(id, map(getattr, cells, _METADATA))),
        )

    def unchanged(self) -> bool:
        """Whether every node still has the same children (the same objects) as when walked."""
        return self._snapshot is not None and self._read() == self._snapshot

    def __contains__(self, node_id: object) -> bool:
        ids = self._ids
        if ids is None:
            ids = self._ids = frozenset(map(id, self.nodes))
        return isinstance(node_id, int) and node_id in ids


def _read(node: Any) -> tuple[GraphDef[Any], list[Any], list[Any]]:
    """The (cached) walk of ``node`` and its leaf values now, with a GraphDef whose
    recorded avals are those of the values (an array attribute may have been
    replaced by one of another shape since the walk: that is not structural)."""
    cached = getattr(node, "_nnx_cache", None) if isinstance(node, Object) else None
    graphdef, cells = _walk_cached(node)
    values = [c._value for c in cells]
    if cached is None or cached[1] is not graphdef:
        # Walked just now: the walk's avals are those of these values.
        cached = getattr(node, "_nnx_cache", None) if isinstance(node, Object) else None
        if cached is not None and cached[2] is cells and graphdef.avals is not None:
            cached[3].known = (values.copy(), graphdef.avals)  # a copy: the State gets ``values``
        return graphdef, cells, values
    known = cached[3].known
    if known is not None and all(map(is_, values, known[0])) and known[1] == graphdef.avals:
        # The very values split last read, with the recorded avals: no array is read
        # (at 20,000 arrays, reading each one's aval costs more than the rest of the split).
        return graphdef, cells, values
    # One pass in the common case: values whose ``aval`` attributes equal the recorded
    # ones have the recorded shapes and dtypes; a value without one (NumPy, a scalar)
    # reads as a marker equal to nothing, and is then described properly.
    if tuple(map(getattr, values, _AVAL, _NO_AVAL)) == graphdef.avals:
        cached[3].known = (values.copy(), graphdef.avals)  # see _NodeIds.known; the State gets ``values``
        return graphdef, cells, values
    avals = _avals(values)
    if avals != graphdef.avals:
        fresh: GraphDef[Any] = GraphDef(graphdef.node, graphdef.layout, avals)
        fresh.builder = graphdef.builder
        cache = getattr(node, "_nnx_cache", None) if isinstance(node, Object) else None
        if cache is not None and cache[1] is graphdef:
            object.__setattr__(node, "_nnx_cache", (cache[0], fresh, *cache[2:]))
        graphdef = fresh
    return graphdef, cells, values


def _parts(
    graphdef: GraphDef[Any],
    cells: list[Any],
    values: list[Any],
    filters: tuple[Filter, ...],
    *,
    exhaustive: bool,
    where: str,
) -> list[State[Any]]:
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
# -- filter-aware overloads of split (generated by typecheck/overloads.py; do not edit) --
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, NoState, Any, Any]], f1: type[LoRAParam] | Literal["lora"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], NoState]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1]: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, NoState, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], NoState, Any]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, R, Any]], f1: type[LoRAParam] | Literal["lora"], f2: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, R]: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def split(node: HasState[N, _Parts[NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], NoState]: ...
@overload
def split(node: HasState[N, _Parts[P1, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1]: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def split(node: HasState[N, _Parts[NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], NoState, Any]: ...
@overload
def split(node: HasState[N, _Parts[P1, R, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, R]: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def split(node: HasState[N, _Parts[Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], NoState]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1]: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def split(node: HasState[N, _Parts[Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], NoState, Any]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P1, R, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, R]: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def split(node: HasState[N, _Parts[Any, Any, Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], NoState]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1]: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def split(node: HasState[N, _Parts[Any, Any, Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], NoState, Any]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, P1, R, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, R]: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], NoState]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1]: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], NoState, Any]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P1, R, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, C, Any, Any, Any]], f1: C, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1]: ...
@overload
@deprecated("nnx: no leaf of the model is in this collection; check its spelling ('params', 'batch_stats', ... or a kind's collection=)")
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any]], f1: LiteralString, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, P2]], f1: type[LoRAParam] | Literal["lora"], f2: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, R, Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, P2]], f1: type[LoRAParam] | Literal["lora"], f2: type[Param[Any]] | Literal["params"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P2, Any, Any, Any, Any, Any, Any, R, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[BatchStat[Any]] | Literal["batch_stats"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, P2, Any, Any, Any, Any, R, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[Cache[Any]] | Literal["cache"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P2, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P2, Any, Any, R, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[Intermediate[Any]] | Literal["intermediates"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[P1, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[P1, Any, P2, Any, Any, Any, Any, Any, R, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[BatchStat[Any]] | Literal["batch_stats"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[P1, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[P1, Any, Any, Any, P2, Any, Any, Any, Any, R, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[Cache[Any]] | Literal["cache"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[P1, Any, Any, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[P1, Any, Any, Any, Any, Any, P2, Any, Any, R, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[Intermediate[Any]] | Literal["intermediates"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, P2, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[LoRAParam] | Literal["lora"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, Any, Any, Any, R, Any, P2, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[LoRAParam] | Literal["lora"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[P2, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[P2, Any, P1, Any, Any, Any, Any, Any, R, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Param[Any]] | Literal["params"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P1, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P1, Any, P2, Any, Any, Any, Any, R, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Cache[Any]] | Literal["cache"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, P2, Any, Any, R, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Intermediate[Any]] | Literal["intermediates"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, P2, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[LoRAParam] | Literal["lora"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, Any, Any, Any, R, Any, P2, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[LoRAParam] | Literal["lora"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[P2, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[P2, Any, Any, Any, P1, Any, Any, Any, Any, R, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[Param[Any]] | Literal["params"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P2, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P2, Any, P1, Any, Any, Any, Any, R, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[BatchStat[Any]] | Literal["batch_stats"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, P2, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, P2, Any, Any, R, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[Intermediate[Any]] | Literal["intermediates"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any, P2, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[LoRAParam] | Literal["lora"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P1, Any, Any, R, Any, P2, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[LoRAParam] | Literal["lora"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[P2, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[P2, Any, Any, Any, Any, Any, P1, Any, Any, R, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[Param[Any]] | Literal["params"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P2, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, P2, Any, Any, Any, P1, Any, Any, R, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[BatchStat[Any]] | Literal["batch_stats"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, P2, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2]: ...
@overload
def split(node: HasState[N, _Parts[Any, Any, Any, Any, P2, Any, P1, Any, Any, R, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[Cache[Any]] | Literal["cache"], f3: EllipsisType, /, *, graph: bool | None = None) -> tuple[GraphDef[N], P1, P2, R]: ...
# -- end of the generated overloads of split --
@overload
def split(node: HasState[N, S], /, *, graph: bool | None = None) -> tuple[GraphDef[N], S]: ...
@overload
def split(node: HasState[N, S], f1: Filter, /, *, graph: bool | None = None) -> tuple[GraphDef[N], S]: ...
@overload
def split(node: HasState[N, S], f1: Filter, f2: Filter, /, *, graph: bool | None = None) -> tuple[GraphDef[N], S, S]: ...
@overload
def split(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, /, *, graph: bool | None = None) -> tuple[GraphDef[N], S, S, S]: ...
@overload
def split(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, f4: Filter, /, *, graph: bool | None = None) -> tuple[GraphDef[N], S, S, S, S]: ...
@overload
def split(node: N, /, *, graph: bool | None = None) -> tuple[GraphDef[N], State[N]]: ...
@overload
def split(node: N, f1: Filter, /, *, graph: bool | None = None) -> tuple[GraphDef[N], State[N]]: ...
@overload
def split(node: N, f1: Filter, f2: Filter, /, *, graph: bool | None = None) -> tuple[GraphDef[N], State[N], State[N]]: ...
@overload
def split(node: N, f1: Filter, f2: Filter, f3: Filter, /, *, graph: bool | None = None) -> tuple[GraphDef[N], State[N], State[N], State[N]]: ...
@overload
def split(node: N, f1: Filter, f2: Filter, f3: Filter, f4: Filter, /, *, graph: bool | None = None) -> tuple[GraphDef[N], State[N], State[N], State[N], State[N]]: ...
@overload
def split(node: object, /, *filters: Filter, graph: bool | None = None) -> tuple[Any, ...]: ...
def split(node: Any, /, *filters: Filter, graph: bool | None = None) -> tuple[Any, ...]:
    """Split a module into its GraphDef and one State per filter.

    Every leaf must match one of the filters (the first that matches takes it);
    end with ``...`` to collect the rest. With no filters, one State holds all.
    ``graph=False`` (tree mode, see ``nnx.modes``) also refuses a graph that shares.
    """
    if type(node) in PLAIN:
        node = tracked(node)
    if graph is not None or SWITCHED[0]:  # graph mode by default: not even a call
        check_tree(node, graph, "nnx.split")
    graphdef, cells, values = _read(node)
    return (graphdef, *_parts(graphdef, cells, values, filters, exhaustive=True, where="nnx.split"))


# -- filter-aware overloads of state (generated by typecheck/overloads.py; do not edit) --
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def state(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, NoState, Any, Any]], f1: type[LoRAParam] | Literal["lora"], /, *, graph: bool | None = None) -> NoState: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], /, *, graph: bool | None = None) -> P1: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def state(node: HasState[N, _Parts[NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> NoState: ...
@overload
def state(node: HasState[N, _Parts[P1, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> P1: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def state(node: HasState[N, _Parts[Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> NoState: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> P1: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def state(node: HasState[N, _Parts[Any, Any, Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> NoState: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> P1: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def state(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> NoState: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> P1: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, C, Any, Any, Any]], f1: C, /, *, graph: bool | None = None) -> P1: ...
@overload
@deprecated("nnx: no leaf of the model is in this collection; check its spelling ('params', 'batch_stats', ... or a kind's collection=)")
def state(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any]], f1: LiteralString, /, *, graph: bool | None = None) -> P1: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, P2]], f1: type[LoRAParam] | Literal["lora"], f2: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P2, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[P1, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[P1, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[P1, Any, Any, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, P2, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[LoRAParam] | Literal["lora"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[P2, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, P1, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, P2, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[LoRAParam] | Literal["lora"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[P2, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, P2, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, P2, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[Intermediate[Any]] | Literal["intermediates"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any, P2, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[LoRAParam] | Literal["lora"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[P2, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[Param[Any]] | Literal["params"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, P2, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
@overload
def state(node: HasState[N, _Parts[Any, Any, Any, Any, P2, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[Cache[Any]] | Literal["cache"], /, *, graph: bool | None = None) -> tuple[P1, P2]: ...
# -- end of the generated overloads of state --
@overload
def state(node: HasState[N, S], /, *, graph: bool | None = None) -> S: ...
@overload
def state(node: HasState[N, S], f1: Filter, /, *, graph: bool | None = None) -> S: ...
@overload
def state(node: HasState[N, S], f1: Filter, f2: Filter, /, *, graph: bool | None = None) -> tuple[S, S]: ...
@overload
def state(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, /, *, graph: bool | None = None) -> tuple[S, S, S]: ...
@overload
def state(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, f4: Filter, /, *, graph: bool | None = None) -> tuple[S, S, S, S]: ...
@overload
def state(node: N, /, *, graph: bool | None = None) -> State[N]: ...
@overload
def state(node: N, f1: Filter, /, *, graph: bool | None = None) -> State[N]: ...
@overload
def state(node: N, f1: Filter, f2: Filter, /, *, graph: bool | None = None) -> tuple[State[N], State[N]]: ...
@overload
def state(node: N, f1: Filter, f2: Filter, f3: Filter, /, *, graph: bool | None = None) -> tuple[State[N], State[N], State[N]]: ...
@overload
def state(node: N, f1: Filter, f2: Filter, f3: Filter, f4: Filter, /, *, graph: bool | None = None) -> tuple[State[N], State[N], State[N], State[N]]: ...
@overload
def state(node: N, /, *filters: Filter, graph: bool | None = None) -> tuple[State[N], ...]: ...
def state(node: Any, /, *filters: Filter, graph: bool | None = None) -> Any:
    """The module's state, or one State per filter (leaves matching none are left out).
    ``graph=False``: tree mode, as for ``split``."""
    if type(node) in PLAIN:
        node = tracked(node)
    if graph is not None or SWITCHED[0]:  # graph mode by default: not even a call
        check_tree(node, graph, "nnx.state")
    graphdef, cells, values = _read(node)
    parts = _parts(graphdef, cells, values, filters, exhaustive=False, where="nnx.state")
    return parts[0] if len(parts) == 1 else tuple(parts)


def graphdef(node: N, /, *, graph: bool | None = None) -> GraphDef[N]:
    """The GraphDef of a module (the static half of ``split``). ``graph=False``: tree mode."""
    if type(node) in PLAIN:
        node = tracked(node)
    if graph is not None or SWITCHED[0]:  # graph mode by default: not even a call
        check_tree(node, graph, "nnx.graphdef")
    return _read(node)[0]


# -- merge ---------------------------------------------------------------------


def _check_states(states: tuple[Any, ...], where: str) -> None:
    for position, s in enumerate(states):
        if not isinstance(s, State):
            shown = "None" if s is None else type(s).__name__
            hint = " To make a State from a nested dict, wrap it: nnx.State(d)." if isinstance(s, dict) else ""
            raise TypeError(
                f"{where}: state argument {position + 1} (after the GraphDef) is a {shown}; "
                f"{where} takes the nnx.State objects that nnx.split / nnx.state returned "
                f"(e.g. {where}(graphdef, state) or {where}(graphdef, params, rest)).{hint}"
            )


def _gather(graphdef: GraphDef[Any], states: tuple[State[Any], ...], where: str) -> list[Any]:
    """The leaves of ``states`` in the GraphDef's leaf order; raises if they do not fit."""
    _check_states(states, where)
    layout = graphdef.layout
    if len(states) == 1 and states[0]._layout == layout:
        return states[0].leaves
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


_AVAL, _NONE, _NO_AVAL = repeat("aval"), repeat(None), repeat(object())
_GET_VALUE = attrgetter("_value")  # a cell's raw value, or the array an array slot points at
#: Types whose instances carry a jax ``aval`` (shape and dtype) as an attribute.
_HAS_AVAL: set[type] = set()


def _aval(value: Any) -> Any:
    """What ``merge`` and ``update`` compare of a leaf: its jax aval (shape, dtype),
    a NumPy array's ``(shape, dtype)``, or ``None`` for a value that is not an array."""
    kind: type[Any] = type(value)  # pyright: ignore[reportUnknownVariableType]  # type() of Any
    if kind in _HAS_AVAL:
        return value.aval
    if isinstance(value, jax.Array):  # jax arrays and tracers (by instance, see _category)
        _HAS_AVAL.add(kind)
        return value.aval
    if isinstance(value, (np.ndarray, np.generic, jax.ShapeDtypeStruct)):
        return (tuple(value.shape), value.dtype)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    return None


def _avals(values: list[Any]) -> tuple[Any, ...]:
    """``_aval`` of every value; for jax arrays alone, one C-level pass.

    Arrays that come out of the same computation share one aval object, so
    comparing two such tuples is mostly identity checks.
    """
    if set(map(type, values)) <= _HAS_AVAL:
        return tuple(map(getattr, values, _AVAL))
    return tuple(map(_aval, values))


def _shape(aval: Any) -> tuple[int, ...] | None:
    if aval is None:
        return None
    return aval[0] if type(aval) is tuple else tuple(aval.shape)  # pyright: ignore[reportUnknownVariableType]


def _dtype(aval: Any) -> Any:
    if aval is None:
        return None
    return aval[1] if type(aval) is tuple else aval.dtype  # pyright: ignore[reportUnknownVariableType]


def _check_shapes(graphdef: GraphDef[Any], leaves: list[Any]) -> None:
    """Refuse leaves whose shapes differ from those the GraphDef was split with.

    A leaf may gain or lose *leading* axes (same trailing shape): that is how
    ``jax.vmap`` / ``jax.lax.scan`` see a stacked module, one layer at a time.
    """
    expected = graphdef.avals
    if expected is None or tuple(map(getattr, leaves, _AVAL, _NO_AVAL)) == expected:
        return  # one C-level pass in the common case (see _read)
    got = _avals(leaves)
    if got == expected:
        return
    for path, was, now in zip(graphdef.layout.paths, expected, got):
        want, have = _shape(was), _shape(now)
        if want == have or want is None or have is None:
            continue
        short, long = sorted((want, have), key=len)
        if len(short) < len(long) and long[len(long) - len(short) :] == short:
            continue  # stacked / unstacked along leading axes
        raise ValueError(
            f"nnx.merge: '{path_str(path)}' of {graphdef.type.__name__} had shape {want} when it was "
            f"split, but the State holds shape {have} there; nothing was built. Merge a State of "
            "the same shapes, or split a module created with the new shapes to get its GraphDef."
        )


_SET_TRACE: Any = Object._nnx_trace.__set__  # type: ignore[attr-defined]  # the slot's descriptor
_SET_DICT: Any = Object.__dict__["__dict__"].__set__
#: The metadata dict of every built cell without metadata (never changed in place).
_NO_METADATA: dict[str, Any] = {}
#: The builder of a GraphDef merged once: compile it at the next merge.
_MERGED_ONCE: Any = object()

#: A build: the root, the new graph's cells (``None`` when it has plain array
#: attributes, which have no cell), and every indexed node in index order.
Built = tuple[Any, "list[Any] | None", list[Any]]


def _build(graphdef: GraphDef[Any], leaves: list[Any]) -> Built:
    """Build the graph of ``graphdef``: interpreted the first time, then compiled."""
    builder = graphdef.builder
    if builder is None or builder is _MERGED_ONCE:
        if builder is None:
            # Most GraphDefs are merged once (clone, a cold split): interpreting
            # costs less than compiling then.
            graphdef.builder = _MERGED_ONCE
            built: dict[int, Any] = {}
            root, cells = build_node(graphdef.node, leaves, built, None)
            return root, cells, [built[i] for i in range(len(built))]
        builder = graphdef.builder = _compile(graphdef.node)
    result: Built = builder(leaves, current_trace())
    return result


def _compile(node: tuple[Any, ...]) -> Any:
    """A straight-line Python function that builds the graph ``node`` describes.

    ``build(L, tr)`` runs one statement per node: no dispatch on tags, no
    recursion, no iterator over the leaves, every constant (types, statics,
    metadata) bound by name. Node ``i`` of the description is the local
    ``n{i}``; containers are created before their children (a reference back to
    an ancestor finds it) and filled after them.

    Cells with the same metadata share one metadata dict, made when the
    builder is compiled: no code changes a cell's metadata dict in place
    (``set_metadata`` replaces it), so sharing is safe and saves a dict per cell.
    """
    env: dict[str, Any] = {
        "new": object.__new__, "st": _SET_TRACE, "sd": _SET_DICT, "ext": list.extend,  # pyright: ignore[reportUnknownMemberType]
        "upd": dict.update, "lnew": list.__new__, "dnew": dict.__new__,  # pyright: ignore[reportUnknownMemberType]
        "List": List, "Dict": Dict, "sa": object.__setattr__,
    }  # fmt: skip
    const_names: dict[int, str] = {}
    meta_names: dict[Any, str] = {}
    lines: list[str] = []
    cells: list[str] = []
    count = [0, 0]  # leaves, tuples
    plain_arrays = [False]
    made: list[str] = []  # the indexed nodes, in index order

    def const(value: Any) -> str:
        name = const_names.get(id(value))
        if name is None:
            name = const_names[id(value)] = f"k{len(const_names)}"
            env[name] = value
        return name

    def metadata(meta: Any) -> str:
        """The name of the metadata dict that every cell built with ``meta`` shares."""
        name = meta_names.get(meta)
        if name is None:
            name = meta_names[meta] = const(thaw_metadata(meta) if meta else _NO_METADATA)
        return name

    def open_(sub: tuple[Any, ...], key: Any) -> str | None:
        """The expression of a leaf-like node, or ``None`` after opening a container."""
        tag = sub[0]
        if tag == "var":
            _, kind, i, meta = sub
            lines.append(
                f"n{i} = new({const(kind)}); n{i}._value = L[{count[0]}]; "
                f"n{i}._trace = tr; n{i}._metadata = {metadata(meta)}"
            )
            count[0] += 1
            cells.append(f"n{i}")
            made.append(f"n{i}")
            return f"n{i}"
        if tag == "ref":
            return f"n{sub[1]}"
        if tag == "static":
            return const(sub[1].value)
        if tag == "array":
            plain_arrays[0] = True
            count[0] += 1
            return f"L[{count[0] - 1}]"
        if tag == "object":
            lines.append(f"n{sub[2]} = new({const(sub[1])}); st(n{sub[2]}, tr)")
            made.append(f"n{sub[2]}")
            stack.append((iter(sub[3]), f"n{sub[2]}", [], tag, key))
        elif tag == "list":
            lines.append(f"n{sub[1]} = lnew(List); sa(n{sub[1]}, '_nnx_trace', tr)")
            made.append(f"n{sub[1]}")
            stack.append((iter(sub[2]), f"n{sub[1]}", [], tag, key))
        elif tag == "dict":
            lines.append(f"n{sub[1]} = dnew(Dict); sa(n{sub[1]}, '_nnx_trace', tr)")
            made.append(f"n{sub[1]}")
            stack.append((iter(sub[2]), f"n{sub[1]}", [], tag, key))
        else:
            count[1] += 1
            stack.append((iter(sub[1]), f"t{count[1]}", [], tag, key))
        return None

    stack: list[tuple[Any, str, list[str], str, Any]] = []
    root = open_(node, None)
    while stack:
        it, name, parts, tag, _ = frame = stack[-1]
        keyed = tag in ("object", "dict")
        for item in it:
            key, sub = item if keyed else (None, item)
            expr = open_(sub, key)
            if expr is None:
                break
            parts.append(f"{key!r}: {expr}" if keyed else expr)
        else:
            stack.pop()
            if tag == "object":
                lines.append(f"sd({name}, {{{', '.join(parts)}}})")
            elif tag == "dict":
                lines.append(f"upd({name}, {{{', '.join(parts)}}})")
            elif tag == "list":
                lines.append(f"ext({name}, [{', '.join(parts)}])")
            else:
                lines.append(f"{name} = ({''.join(p + ', ' for p in parts)})")
            if stack:
                parent = stack[-1]
                parent[2].append(f"{frame[4]!r}: {name}" if parent[3] in ("object", "dict") else name)
            else:
                root = name
    cells_expr = "None" if plain_arrays[0] else f"[{', '.join(cells)}]"
    body = "\n    ".join(lines)
    nodes_expr = ", ".join(made)  # pre-order = index order
    source = f"def build(L, tr):\n    {body}\n    return {root}, {cells_expr}, [{nodes_expr}]\n"
    exec(compile(source, "<nnx.merge builder>", "exec"), env)
    return env["build"]


def build_node(
    node: tuple[Any, ...], leaves: list[Any], built: dict[int, Any], reuse: dict[int, Any] | None
) -> tuple[Any, list[Any] | None]:
    """Build the graph that ``node`` describes, taking leaf values in order from ``leaves``.

    ``built`` maps node indices to nodes already built (a ``("ref", i)`` resolves
    there); ``reuse`` maps indices to existing objects and cells to refill in place
    instead of creating new ones (how a transform lands structural changes on the
    caller's objects). Returns the root and the new graph's cells, or ``None`` for the
    cells when a plain array attribute (which has no cell) was built. Keeps its own
    stack, so a graph of any depth builds.
    """
    cells: list[Any] = []
    plain_arrays = False
    feed = iter(leaves)
    trace = current_trace()
    new = object.__new__
    set_trace = _SET_TRACE
    # A frame: [children, the container (None for a tuple), child values, tag, key in parent].
    stack: list[tuple[Any, Any, list[Any], str, Any]] = []

    def open_(node: tuple[Any, ...], key: Any) -> Any:
        """The value of a leaf-like node, or ``_OPEN`` after opening a container."""
        nonlocal plain_arrays
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
        if tag == "ref":
            return built[node[1]]
        if tag == "static":
            return node[1].value
        if tag == "array":
            plain_arrays = True
            return next(feed)
        # Containers are made without __init__ and filled with the plain list/dict
        # methods (no epoch bump); pyright sees the unparameterised classes as [Unknown].
        if tag == "object":
            _, type_, i, attrs = node
            obj = reuse.get(i) if reuse else None
            if obj is None:
                obj = new(type_)
                set_trace(obj, trace)
            else:
                obj.__dict__.clear()
            built[i] = obj
            stack.append((iter(attrs), obj, [], tag, key))
        elif tag == "list":
            lst: List[Any] | None = reuse.get(node[1]) if reuse else None
            if lst is None:
                lst = List.__new__(List)  # pyright: ignore[reportUnknownVariableType]
            else:
                list.clear(lst)  # pyright: ignore[reportUnknownMemberType]
            built[node[1]] = lst
            stack.append((iter(node[2]), lst, [], tag, key))
        elif tag == "dict":
            dct: Dict[Any, Any] | None = reuse.get(node[1]) if reuse else None
            if dct is None:
                dct = Dict.__new__(Dict)  # pyright: ignore[reportUnknownVariableType]
            else:
                dict.clear(dct)  # pyright: ignore[reportUnknownMemberType]
            built[node[1]] = dct
            stack.append((iter(node[2]), dct, [], tag, key))
        else:
            stack.append((iter(node[1]), None, [], tag, key))
        return _OPEN

    root = open_(node, None)
    while stack:
        it, target, values, tag, _ = frame = stack[-1]
        keyed = tag in ("object", "dict")
        for item in it:
            key, sub = item if keyed else (None, item)
            value = open_(sub, key)
            if value is _OPEN:
                break
            values.append((key, value) if keyed else value)
        else:
            stack.pop()
            if tag == "object":
                target.__dict__.update(values)
            elif tag == "list":
                list.extend(target, values)  # pyright: ignore[reportUnknownMemberType]
            elif tag == "dict":
                dict.update(target, values)  # pyright: ignore[reportUnknownMemberType]
            else:
                target = tuple(values)
            if stack:
                parent = stack[-1]
                parent[2].append((frame[4], target) if parent[3] in ("object", "dict") else target)
            else:
                root = target
    return root, (None if plain_arrays else cells)


_OPEN: Any = object()


@overload
def merge(graphdef: GraphDef[N], state: State[Any], /, *states: State[Any]) -> N: ...
@overload
def merge(bundle: GraphState[N], /, *bundles: GraphState[Any]) -> N: ...
def merge(bundle: Any, state: Any = _OPEN, /, *states: Any) -> Any:
    """Rebuild a module from its GraphDef and the States ``split`` produced
    (or from the GraphStates ``nnx.unpack`` produced: ``merge(params, rest)``).

    The result is a new object graph with new cells; sharing and cycles are
    restored exactly as they were when the module was split. The States must
    have the paths, kinds and shapes the module had when it was split (a leaf
    may gain or lose leading axes, as under ``jax.vmap``).
    """
    graphdef: GraphDef[Any]
    if isinstance(bundle, GraphState):
        graphdef, parts = unbundle(bundle, () if state is _OPEN else (state, *states))  # pyright: ignore[reportUnknownArgumentType]
        state, states = parts[0], tuple(parts[1:])
    elif isinstance(bundle, GraphDef):
        graphdef = bundle  # pyright: ignore[reportUnknownVariableType]  # GraphDef[Unknown] from Any
    else:
        raise TypeError(
            f"nnx.merge: the first argument must be the GraphDef from nnx.split (or a GraphState "
            f"from nnx.unpack), got {type(bundle).__name__}."
        )
    if state is _OPEN:
        raise TypeError(
            "nnx.merge() missing 1 required positional argument: 'state'; pass the State(s) "
            "nnx.split returned with this GraphDef: nnx.merge(graphdef, state)."
        )
    leaves = _gather(graphdef, (state, *states), "nnx.merge")
    _check_shapes(graphdef, leaves)
    root, cells, nodes = _build(graphdef, leaves)
    if cells is not None and isinstance(root, Object):
        object.__setattr__(root, "_nnx_cache", (epoch.current(), graphdef, cells, _NodeIds(nodes)))
    return root


# -- update --------------------------------------------------------------------


def update(node: Any, /, *states: State[Any]) -> None:
    """Write the values of ``states`` into the module's existing cells, in place.

    Every path of every state must exist in the module and hold the same kind
    of cell. Where the module holds an array, the State must hold an array of
    the same shape and the same dtype (cast explicitly, e.g. ``x.astype(w.dtype)``,
    to change a dtype: a silent change would recompile every ``jax.jit`` and can
    lose precision). Nothing is written unless every leaf fits.
    """
    plain = type(node) in PLAIN
    graphdef, cells = _walk_cached(tracked(node) if plain else node)
    layout = graphdef.layout
    _check_states(states, "nnx.update")
    made_in = _cells_trace(node, cells)
    writes: list[tuple[list[Any], list[Any]]] = []
    for s in states:
        targets = cells if s._layout == layout else [cells[i] for i in _update_plan(layout, s._layout, graphdef)]
        values = s.leaves
        _check_update(graphdef, s, targets, values, made_in)
        if plain:
            refuse_array_writes(node, targets, s.paths, "nnx.update")
        writes.append((targets, values))
    for targets, values in writes:
        for cell, value in zip(targets, values):
            cell._value = value


_TRACE = repeat("_trace")
_HELD_AVAL = attrgetter("_value.aval")


def _cells_trace(node: Any, cells: list[Any]) -> object:
    """The trace all of ``cells`` were made in, or ``_MIXED``; remembered with a cached walk."""
    cache = getattr(node, "_nnx_cache", None) if isinstance(node, Object) else None
    ids: _NodeIds | None = cache[3] if cache is not None and cache[2] is cells else None
    if ids is not None and ids.trace is not _UNASKED:
        return ids.trace
    traces = list(map(getattr, cells, _TRACE))
    found = traces[0] if traces and traces.count(traces[0]) == len(traces) else _MIXED
    if ids is not None:
        ids.trace = found
    return found


def _check_update(graphdef: GraphDef[Any], s: State[Any], targets: list[Any], values: list[Any], made_in: object) -> None:
    """Refuse values that do not fit the cells they would replace.

    The common case (jax arrays whose avals equal the old ones, cells all made
    in this trace: ``made_in``) is decided with a few C-level passes; only a
    misfit walks leaf by leaf.
    """
    # C-level passes: the new values are all jax arrays (a Variable would forward ``.aval``
    # to its value), and their avals equal the old values' read straight from the cells.
    try:
        fits = _HAS_AVAL.issuperset(map(type, values)) and list(map(_HELD_AVAL, targets)) == list(map(getattr, values, _AVAL))
    except AttributeError:  # an old value without an aval: decided leaf by leaf below
        fits = False
    if not fits:
        olds = [c._value for c in targets]
        for position, (old, value) in enumerate(zip(olds, values)):
            if old is not value:
                _check_leaf(graphdef, s.paths[position], old, value)
    trace = current_trace()
    if made_in is trace or made_in is None or (made_in is not _MIXED and made_in == trace):
        return  # every cell was made in this trace (or in none): nothing to refuse
    traces = list(map(getattr, targets, _TRACE))
    if traces.count(trace) != len(traces):
        for cell in targets:
            owner_trace = cell._trace
            if owner_trace is not trace and owner_trace is not None and owner_trace != trace:
                cell._check_trace("update")


def _check_leaf(graphdef: GraphDef[Any], path: Path, old: Any, value: Any) -> None:
    where = f"nnx.update: '{path_str(path)}' of {graphdef.type.__name__}"
    was, now = _aval(old), _aval(value)
    if isinstance(value, (Object, Variable, List, Dict)) or (was is not None and now is None):
        held = "an array" if was is not None else f"a {type(old).__name__}"
        shown = repr(value) if len(repr(value)) <= 40 else "a value"  # pyright: ignore[reportUnknownArgumentType]
        raise TypeError(
            f"{where} holds {held}, but the State holds {shown} (a {type(value).__name__}) there; "  # pyright: ignore[reportUnknownArgumentType]
            "nothing was updated. States hold arrays: put a jax or NumPy array at this path "
            "(e.g. jnp.asarray(value)), or assign other objects to the module attribute itself."
        )
    if was is None or now is None:
        return
    if _shape(was) != _shape(now):
        raise ValueError(
            f"{where} has shape {_shape(was)} but the State holds shape {_shape(now)}; "
            "nothing was updated. Reshape the value or re-create the module with the new shape."
        )
    if _dtype(was) != _dtype(now):
        raise TypeError(
            f"{where} has dtype {_dtype(was)} but the State holds dtype {_dtype(now)}; nothing was "
            f"updated. nnx.update keeps dtypes: cast the value first (value.astype({_dtype(was)})), "
            "or assign the attribute directly to change its dtype on purpose."
        )


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


# -- pop, clone, iteration -----------------------------------------------------


# -- filter-aware overloads of pop (generated by typecheck/overloads.py; do not edit) --
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, NoState, Any, Any]], f1: type[LoRAParam] | Literal["lora"], /) -> NoState: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], /) -> P1: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def pop(node: HasState[N, _Parts[NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], /) -> NoState: ...
@overload
def pop(node: HasState[N, _Parts[P1, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], /) -> P1: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def pop(node: HasState[N, _Parts[Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], /) -> NoState: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], /) -> P1: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], /) -> NoState: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], /) -> P1: ...
@overload
@deprecated("nnx: this filter matches no state of the model; check the filter (or the model)")
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, NoState, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], /) -> NoState: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], /) -> P1: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, C, Any, Any, Any]], f1: C, /) -> P1: ...
@overload
@deprecated("nnx: no leaf of the model is in this collection; check its spelling ('params', 'batch_stats', ... or a kind's collection=)")
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any]], f1: LiteralString, /) -> P1: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, P2]], f1: type[LoRAParam] | Literal["lora"], f2: type[Param[Any]] | Literal["params"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[Cache[Any]] | Literal["cache"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P2, Any, Any, Any, Any, P1, Any, Any]], f1: type[LoRAParam] | Literal["lora"], f2: type[Intermediate[Any]] | Literal["intermediates"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[P1, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[P1, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[Cache[Any]] | Literal["cache"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[P1, Any, Any, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, Any]], f1: type[Param[Any]] | Literal["params"], f2: type[Intermediate[Any]] | Literal["intermediates"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, P2, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[LoRAParam] | Literal["lora"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[P2, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Param[Any]] | Literal["params"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, P1, Any, P2, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Cache[Any]] | Literal["cache"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, P1, Any, Any, Any, P2, Any, Any, Any, Any, Any, Any, Any]], f1: type[BatchStat[Any]] | Literal["batch_stats"], f2: type[Intermediate[Any]] | Literal["intermediates"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, P2, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[LoRAParam] | Literal["lora"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[P2, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[Param[Any]] | Literal["params"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, P2, Any, P1, Any, Any, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, P1, Any, P2, Any, Any, Any, Any, Any, Any, Any]], f1: type[Cache[Any]] | Literal["cache"], f2: type[Intermediate[Any]] | Literal["intermediates"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any, P2, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[LoRAParam] | Literal["lora"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[P2, Any, Any, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[Param[Any]] | Literal["params"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, P2, Any, Any, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[BatchStat[Any]] | Literal["batch_stats"], /) -> tuple[P1, P2]: ...
@overload
def pop(node: HasState[N, _Parts[Any, Any, Any, Any, P2, Any, P1, Any, Any, Any, Any, Any, Any, Any]], f1: type[Intermediate[Any]] | Literal["intermediates"], f2: type[Cache[Any]] | Literal["cache"], /) -> tuple[P1, P2]: ...
# -- end of the generated overloads of pop --
@overload
def pop(node: HasState[N, S], f1: Filter, /) -> S: ...
@overload
def pop(node: HasState[N, S], f1: Filter, f2: Filter, /) -> tuple[S, S]: ...
@overload
def pop(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, /) -> tuple[S, S, S]: ...
@overload
def pop(node: HasState[N, S], f1: Filter, f2: Filter, f3: Filter, f4: Filter, /) -> tuple[S, S, S, S]: ...
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
    if type(node) in PLAIN:
        refuse_pop(node)
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


def _children(node: Any) -> list[tuple[Any, Any]]:
    """A container's ``(key, child)`` pairs as they stand (a copy: the caller may mutate it)."""
    if isinstance(node, Object):
        return list(node.__dict__.items())
    if isinstance(node, Dict):
        return list(node.items())  # pyright: ignore[reportUnknownArgumentType]
    return list(enumerate(node))  # pyright: ignore[reportUnknownArgumentType]


def _is_container(value: Any) -> bool:
    return isinstance(value, (Object, List, Dict)) or (type(value) is tuple and is_node(value))


def _remove(root: Walkable, doomed: list[Variable[Any] | _Slot]) -> None:
    """Delete every reference to the doomed cells (and array slots) from the graph.

    Visits each container once with an explicit stack, so a graph of any depth works.
    """
    doomed_cells = {id(c) for c in doomed if isinstance(c, Variable)}
    doomed_slots = {(id(c.owner), c.key) for c in doomed if isinstance(c, _Slot)}
    if any(isinstance(c, _Slot) and isinstance(c.owner, _Slot) for c in doomed):
        raise TypeError("nnx.pop cannot remove an array stored inside a tuple; use an nnx.List.")

    def is_doomed(owner: Any, key: Any, value: Any) -> bool:
        if isinstance(value, Variable):  # pyright narrows Any to Variable[Unknown]
            return id(value) in doomed_cells  # pyright: ignore[reportUnknownArgumentType]
        return (id(owner), key) in doomed_slots

    seen: set[int] = {id(root)}
    pending: list[Any] = [root]
    while pending:
        node = pending.pop()
        items = _children(node)
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
            if k not in drop and _is_container(v) and id(v) not in seen:
                seen.add(id(v))
                pending.append(v)
    epoch.bump()


def clone(node: N, /, variables: bool = True, *, arrays: bool = False, graph: bool | None = None) -> N:
    """A deep copy of the module graph with new cells; sharing and cycles preserved.

    The new cells hold the same (immutable) arrays. ``arrays=True`` copies each
    array too, so that the copy's buffers can be donated (``jax.jit(...,
    donate_argnums=...)``) without the original's. ``variables=False`` copies
    the modules and containers but shares the cells with ``node``.
    ``graph=False``: tree mode, as for ``split``.
    """
    if type(node) in PLAIN:
        node = tracked(node)
    check_tree(node, graph, "nnx.clone")
    if arrays and not variables:
        raise ValueError(
            "nnx.clone: arrays=True copies the arrays into new cells, but variables=False keeps the old "
            "cells; pass one or the other."
        )
    graphdef, state_ = split(node, graph=True)
    if arrays:
        state_ = State._make(state_._layout, [_copied(v) for v in state_.leaves])
    if not variables:
        nodes = walk_nodes(node)[2]
        cells: dict[int, Any] = {i: n for i, n in enumerate(nodes) if isinstance(n, Variable)}
        root: N = build_node(graphdef.node, state_.leaves, {}, cells)[0]
        return root
    return merge(graphdef, state_)


def _copied(value: Any) -> Any:
    """A copy of an array leaf in a new buffer (other leaves as they are)."""
    if isinstance(value, jax.Array):
        return jax.numpy.array(value, copy=True)
    if isinstance(value, np.ndarray):
        return value.copy()  # pyright: ignore[reportUnknownVariableType]
    return value


def iter_graph(node: Any, /, *, graph: bool | None = None) -> Iterator[tuple[Path, Any]]:
    """Every node of the graph once, pre-order: ``(path, value)`` for the root, Objects,
    containers, cells and arrays. Shared nodes are yielded at their first path
    (``graph=False``, tree mode: a shared node raises instead, when iteration starts).
    """
    check_tree(node, graph, "nnx.iter_graph")
    return _iter_graph(node)


def _iter_graph(node: Any) -> Iterator[tuple[Path, Any]]:
    """``iter_graph``'s walk. Keeps its own stack of child iterators, so a graph of any
    depth can be iterated."""
    seen: set[int] = set()
    stack: list[tuple[Path, Iterator[tuple[Key, Any]]]] = []
    pending: list[tuple[Path, _GraphNode]] = [((), node)]
    while pending or stack:
        if pending:
            path, value = pending.pop()
            if isinstance(value, (Object, List, Dict, Variable)):
                if id(value) in seen:
                    continue
                seen.add(id(value))
            yield path, value
            if isinstance(value, Object):
                children: list[tuple[Key, Any]] = sorted(value.__dict__.items())
            elif isinstance(value, Dict):
                children = sorted(value.items(), key=lambda kv: path_order((kv[0],)))
            elif isinstance(value, (List, tuple)):
                children = list(enumerate(value))
            else:
                continue
            stack.append((path, iter(children)))
            continue
        path, it = stack[-1]
        for k, v in it:
            if is_node(v):
                pending.append(((*path, k), v))
                break
        else:
            stack.pop()
