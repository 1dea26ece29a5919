"""Lifting: how a transform carries module arguments through a pure JAX function.

JAX transforms move pytrees of arrays; nnx functions take Modules, Rngs,
Optimizers, ``nnx.List``/``nnx.Dict`` and Variables, mutate them, and may
return them. Every nnx transform carries such a call in three steps:

1. **Outside**, ``Frame.of(args, kwargs)`` finds the graph nodes among the
   arguments (at any depth of a pytree), walks them *together* as one graph --
   so a submodule shared by two arguments is one node -- and reads the values
   of their cells in leaf order. What JAX sees is that flat list of values and
   the non-node rest of the arguments.
2. **Inside** the JAX function, ``FrameDef.enter`` builds a private copy of the
   graph from the (traced) values and puts it back into the arguments; the
   user's function runs on it; ``FrameDef.leave`` walks the copy again and
   returns the new leaf values, the function's output (module outputs become
   ``NodeOut`` pytrees holding their leaves), and a ``Landing``: the static
   description of what happened, carried out of JAX as a pytree with no leaves.
3. **Outside again**, ``Frame.land`` writes the values into the caller's cells
   and, only when the function changed the structure, rebuilds the changed
   objects in place, reusing every object and cell that survived.

The ``FrameDef`` (the walk's GraphDef plus where the nodes sat in the
arguments) is hashable, so a transform can cache one traced function per
FrameDef; while the caller's graph does not change structure, a call costs one
list comprehension to read the cells and one loop to write them back.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np

from nnx import epoch
from nnx.containers import Dict, List
from nnx.graph import build_node, walk_nodes
from nnx.filters import Path
from nnx.graphdef import GraphDef
from nnx.modes import ensure_tree
from nnx.objects import Object
from nnx.refs import current_trace
from nnx.state import State, path_str
from nnx.jaxapi import tree_flatten, tree_unflatten
from nnx.variables import Variable

#: What a transform treats as part of the object graph rather than as a pytree.
GRAPH_TYPES = (Object, List, Dict, Variable)

# Per-argument patterns: the argument is a graph node, a pytree with no graph
# nodes ("dyn"), a static argument, or a pytree holding graph nodes at some leaves.
NODE = "node"
DYN = "dyn"
STATIC = "static"


def is_graph_node(value: object) -> bool:
    """Whether a transform carries ``value`` as part of the graph (not as a pytree)."""
    return isinstance(value, GRAPH_TYPES)


def _members(roots: Any) -> tuple[Any, ...]:
    """The root nodes a built root tuple holds (with no nodes, the walk built a static ``()``)."""
    members: tuple[Any, ...] = roots if type(roots) is tuple else ()  # pyright: ignore[reportUnknownVariableType]
    return members


def _is_simple_leaf(value: object) -> bool:
    """Values that certainly hold no graph node (no need to flatten them to look)."""
    return value is None or isinstance(value, (jax.Array, np.ndarray, int, float, complex, bool, State))


class Mixed:
    """Pattern of an argument that is a pytree with graph nodes at some of its leaves."""

    __slots__ = ("treedef", "positions", "_hash")

    def __init__(self, treedef: Any, positions: tuple[int, ...]) -> None:
        self.treedef = treedef
        self.positions = positions
        self._hash = hash((treedef, positions))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mixed) and self.treedef == other.treedef and self.positions == other.positions


def classify(value: Any) -> tuple[Any, list[Any], Any]:
    """``(pattern, nodes, dyn)`` for one argument."""
    if isinstance(value, GRAPH_TYPES):
        return NODE, [value], None
    if _is_simple_leaf(value):
        return DYN, [], value
    leaves, treedef = tree_flatten(value, is_leaf=is_graph_node)
    positions = tuple(i for i, leaf in enumerate(leaves) if isinstance(leaf, GRAPH_TYPES))
    if not positions:
        return DYN, [], value
    nodes = [leaves[i] for i in positions]
    dyn = [None if isinstance(leaf, GRAPH_TYPES) else leaf for leaf in leaves]
    return Mixed(treedef, positions), nodes, dyn


class NodeOut:
    """A graph node in a transform's output, as a pytree: its leaf values, and which
    output node it is. Axis specs (``out_axes``) apply to it like to any subtree."""

    __slots__ = ("position", "leaves")

    def __init__(self, position: int, leaves: list[Any]) -> None:
        self.position = position
        self.leaves = leaves


jax.tree_util.register_pytree_node(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    NodeOut,
    lambda n: (n.leaves, n.position),
    lambda position, leaves: NodeOut(position, list(leaves)),
)


class Landing:
    """What a traced call did, as static data: which input leaves it wrote (when the
    structure is unchanged), or the new structure and which of its nodes are the
    caller's old ones; and the graph of any module it returned."""

    __slots__ = ("unchanged", "written", "graphdef", "reuse", "n_outs", "kept")

    def __init__(
        self,
        unchanged: bool,
        written: tuple[int, ...] | None,
        graphdef: GraphDef[Any] | None,
        reuse: tuple[tuple[int, int], ...],
        n_outs: int,
        kept: tuple[tuple[int, int], ...] = (),
    ) -> None:
        self.unchanged = unchanged
        self.written = written  # None: every input leaf is returned
        self.graphdef = graphdef  # the walk of (inputs, outputs); None when not needed
        self.reuse = reuse  # (index in graphdef, index in the caller's walk)
        self.n_outs = n_outs
        # After a structural change: (leaf index in graphdef, input leaf index) of the
        # leaves the function did not touch; they keep the caller's value (and type).
        self.kept = kept

    def _key(self) -> tuple[Any, ...]:
        return (self.unchanged, self.written, self.graphdef, self.reuse, self.n_outs, self.kept)

    # Compared by value: branches of lax.cond must produce equal output structures.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Landing) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


jax.tree_util.register_pytree_node(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    Landing,
    lambda landing: ((), landing),
    lambda landing, _: landing,
)


class FrameDef:
    """The static half of a lifted call: the graph of its node arguments and where
    they sit among the arguments. Hashable; transforms cache traced functions on it."""

    __slots__ = ("graphdef", "patterns", "kwnames", "statics", "_hash")

    def __init__(
        self, graphdef: GraphDef[Any], patterns: tuple[Any, ...], kwnames: tuple[str, ...], statics: tuple[Any, ...]
    ) -> None:
        self.graphdef = graphdef
        self.patterns = patterns  # one per positional argument, then one per keyword
        self.kwnames = kwnames
        self.statics = statics  # the values of static arguments, in order
        self._hash = hash((graphdef, patterns, kwnames, statics))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return (
            isinstance(other, FrameDef)
            and self._hash == other._hash
            and self.graphdef == other.graphdef
            and self.patterns == other.patterns
            and self.kwnames == other.kwnames
            and self.statics == other.statics
        )

    # -- inside the JAX function ----------------------------------------------

    def enter(self, values: Sequence[Any], dyn: Sequence[Any]) -> tuple[tuple[Any, ...], dict[str, Any], Entered]:
        """Build the graph from ``values`` and reassemble ``(args, kwargs)``."""
        built: dict[int, Any] = {}
        roots, _ = build_node(self.graphdef.node, list(values), built, None)
        args, kwargs = self.reassemble(_members(roots), dyn)
        return args, kwargs, Entered(roots, built, values)

    def pure(
        self, fun: Callable[..., Any], where: str, *, forward: bool = True, structure: bool = True
    ) -> Callable[..., tuple[Landing, list[Any], Any]]:
        """The pure function a JAX transform runs: ``(values, *dyn) -> leave(...)`` of
        ``fun`` called on the graph built from ``values`` (see ``leave`` for the flags)."""

        def pure(values: list[Any], *dyn: Any) -> tuple[Landing, list[Any], Any]:
            args, kwargs, entered = self.enter(values, dyn)
            out = fun(*args, **kwargs)
            return self.leave(entered, out, where=where, forward=forward, structure=structure)

        return pure

    def reassemble(self, roots: Sequence[Any], dyn: Sequence[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Put the graph nodes ``roots`` and the ``dyn`` parts back into ``(args, kwargs)``."""
        feed = iter(roots)
        statics = iter(self.statics)
        rebuilt: list[Any] = []
        for pattern, d in zip(self.patterns, dyn):
            if pattern is NODE:
                rebuilt.append(next(feed))
            elif pattern is DYN:
                rebuilt.append(d)
            elif pattern is STATIC:
                rebuilt.append(next(statics))
            else:
                leaves = list(d)
                for p in pattern.positions:
                    leaves[p] = next(feed)
                rebuilt.append(tree_unflatten(pattern.treedef, leaves))
        n_pos = len(self.patterns) - len(self.kwnames)
        return tuple(rebuilt[:n_pos]), dict(zip(self.kwnames, rebuilt[n_pos:]))

    def dyn_like(self, entered: Entered, args: Sequence[Any], where: str) -> list[Any]:
        """The dyn parts of ``args``, which must hold the entered graph's own root nodes at
        the places the inputs held them (a loop body returning its carry)."""
        roots = iter(_members(entered.roots))
        dyn: list[Any] = []
        for pattern, value in zip(self.patterns, args):
            got, nodes, d = classify(value)
            if got != pattern or any(n is not next(roots, None) for n in nodes):
                raise ValueError(
                    f"{where}: the function must return its carry with the same modules in the "
                    f"same places as it received them; got {value!r}."
                )
            dyn.append(d)
        return dyn

    def leave(
        self, entered: Entered, out: Any, *, where: str, forward: bool = True, structure: bool = True
    ) -> tuple[Landing, list[Any], Any]:
        """Walk the graph after the function ran: ``(landing, leaf values, output)``.

        ``forward=True`` returns only the input leaves the function wrote (the rest
        are known outside); otherwise every input leaf is returned in order, which
        transforms that need a fixed output structure (vmap, scan, cond) ask for.
        ``structure=False`` refuses structural changes to the input graph.
        """
        out_leaves, out_treedef = tree_flatten(out, is_leaf=is_graph_node)
        out_nodes: list[Any] = [leaf for leaf in out_leaves if is_graph_node(leaf)]
        graphdef, cells, nodes = walk_nodes((entered.roots, tuple(out_nodes)))
        values = [c._value for c in cells]
        n_in = len(self.graphdef.layout)
        # With no graph node anywhere the walk is one static leaf, not a pair.
        in_node = graphdef.node[1][0] if graphdef.node[0] == "tuple" else self.graphdef.node
        built = entered.built
        unchanged = in_node == self.graphdef.node and all(nodes[i] is built[i] for i in range(len(built)))
        if unchanged:
            inputs = entered.values
            written = tuple(i for i in range(n_in) if values[i] is not inputs[i]) if forward else None
            new = [values[i] for i in written] if written is not None else values[:n_in]
            reuse: tuple[tuple[int, int], ...] = ()
            out_values = values[n_in:]
            kept: tuple[tuple[int, int], ...] = ()
        else:
            if not structure:
                raise StructureChanged(_structure_error(where, self.graphdef, graphdef))
            position = {id(node): i for i, node in built.items()}
            reuse = tuple((o, position[id(n)]) for o, n in enumerate(nodes) if id(n) in position)
            written, out_values = None, []
            kept, new = _untouched(values, entered.values) if forward else ((), values)
        if out_nodes:
            out = _replace_nodes(out_leaves, out_treedef, graphdef, n_in, out_values if unchanged else None)
        landing = Landing(
            unchanged, written, graphdef if (out_nodes or not unchanged) else None, reuse, len(out_nodes), kept
        )
        return landing, new, out


def _untouched(values: list[Any], inputs: Sequence[Any]) -> tuple[tuple[tuple[int, int], ...], list[Any]]:
    """Split the leaves of a changed graph into those that are still an input leaf's own
    (traced) value, as ``(leaf index, input index)``, and the rest, which must be returned.

    The caller keeps its own value for the former, so that what the function did not
    touch keeps its type: a NumPy float64 buffer stays one instead of coming back as a
    float32 ``jax.Array``."""
    at = {id(v): j for j, v in enumerate(inputs)}
    kept: list[tuple[int, int]] = []
    new: list[Any] = []
    for i, v in enumerate(values):
        j = at.get(id(v))
        if j is None:
            new.append(v)
        else:
            kept.append((i, j))
    return tuple(kept), new


class Entered:
    """What ``enter`` built inside the trace (needed again by ``leave``)."""

    __slots__ = ("roots", "built", "values")

    def __init__(self, roots: Any, built: dict[int, Any], values: Sequence[Any]) -> None:
        self.roots = roots
        self.built = built
        self.values = values


def _out_groups(graphdef: GraphDef[Any]) -> list[tuple[int, int]]:
    """For each output node, the ``[start, stop)`` range of its leaves in the walk."""
    paths = graphdef.layout.paths
    n_outs = len(graphdef.node[1][1][1]) if graphdef.node[1][1][0] == "tuple" else 0
    groups: list[tuple[int, int]] = []
    for j in range(n_outs):
        idx = [i for i, p in enumerate(paths) if p[0] == 1 and p[1] == j]
        groups.append((idx[0], idx[-1] + 1) if idx else (0, 0))
    return groups


def _replace_nodes(
    leaves: list[Any], treedef: Any, graphdef: GraphDef[Any], n_in: int, out_values: list[Any] | None
) -> Any:
    """The output pytree with each graph node replaced by a ``NodeOut`` of its own leaves.

    Output nodes that are (or reach) input nodes keep only their new leaves; a leaf
    shared with the inputs or an earlier output is carried where the walk first met it.
    """
    replaced: list[Any] = []
    j = 0
    groups = _out_groups(graphdef)
    for leaf in leaves:
        if isinstance(leaf, GRAPH_TYPES):
            start, stop = groups[j]
            if out_values is not None:
                mine = out_values[start - n_in : stop - n_in] if stop > start else []
            else:
                mine = []  # structure changed: every leaf travels with the inputs
            replaced.append(NodeOut(j, mine))
            j += 1
        else:
            replaced.append(leaf)
    return tree_unflatten(treedef, replaced)


class StructureChanged(ValueError):
    """A function run with ``structure=False`` changed the structure of its module arguments
    (a transform that can carry the change out catches it and traces again; see ``nnx.vmap``)."""


def _structure_error(where: str, before: GraphDef[Any], after: GraphDef[Any]) -> str:
    old = {path_str(p) for p in before.layout.paths}
    new = {path_str(p[1:]) for p in after.layout.paths if p and p[0] == 0}
    added, removed = sorted(new - old), sorted(old - new)
    return (
        f"{where}: the function changed the structure of its module arguments "
        f"(state paths added {added}, removed {removed}, or attributes rebound). "
        f"{where} cannot carry structural changes out of the transform; make them "
        "outside it, or inside nnx.jit / nnx.grad, which can."
    )


class Frame:
    """The outside half of a lifted call: the FrameDef plus the caller's own nodes."""

    __slots__ = ("framedef", "cells", "nodes", "roots", "owners", "trace", "epoch", "node_ids")

    def __init__(
        self, framedef: FrameDef, cells: list[Any], nodes: list[Any], roots: tuple[Any, ...], owners: tuple[int, ...]
    ) -> None:
        self.framedef = framedef
        self.cells = cells
        self.nodes = nodes
        self.roots = roots
        self.owners = owners  # for each root: the index of the argument that holds it
        traces = {id(t): t for c in cells if (t := c._trace) is not None}
        self.trace: object = next(iter(traces.values())) if len(traces) == 1 else _MIXED
        self.epoch = epoch.current()
        self.node_ids = frozenset(map(id, nodes))

    def still_valid(self) -> bool:
        """Whether the caller's graph still has the structure this frame walked: the
        structure epoch has not moved, or whatever changed is not one of its nodes."""
        now = epoch._counter[0]
        if self.epoch == now:
            return True
        if epoch.changed_since(self.epoch, self.node_ids):
            return False
        self.epoch = now
        return True

    @staticmethod
    def of(
        args: Sequence[Any],
        kwargs: dict[str, Any],
        static: Callable[[int | str], bool] | None = None,
        previous: Frame | None = None,
        tree: str | None = None,
    ) -> tuple[Frame, list[Any]]:
        """Find and walk the graph nodes in ``(args, kwargs)``: the frame and the dyn parts.

        ``previous``: a frame whose walk is reused if it covered the same root objects
        and no structure changed since (the epoch has not moved). ``tree``: the
        transform's name when it runs in tree mode (``nnx.modes``), whose arguments
        may then share nothing.
        """
        patterns: list[Any] = []
        owners: list[int] = []
        roots: list[Any] = []
        dyn: list[Any] = []
        statics: list[Any] = []
        kwnames = tuple(sorted(kwargs))
        entries: list[tuple[int | str, Any]] = [*enumerate(args), *((k, kwargs[k]) for k in kwnames)]
        if tree is not None:
            ensure_tree(_labelled_nodes(entries, static), tree)
        for key, value in entries:
            if static is not None and static(key):
                patterns.append(STATIC)
                statics.append(value)
                dyn.append(None)
                continue
            pattern, nodes, d = classify(value)
            owners.extend([len(patterns)] * len(nodes))
            patterns.append(pattern)
            roots.extend(nodes)
            dyn.append(d)
        if (
            previous is not None
            and len(previous.roots) == len(roots)
            and all(a is b for a, b in zip(previous.roots, roots))
            and previous.still_valid()
        ):
            graphdef, cells, nodes = previous.framedef.graphdef, previous.cells, previous.nodes
        else:
            graphdef, cells, nodes = walk_nodes(tuple(roots))
        framedef = FrameDef(graphdef, tuple(patterns), kwnames, tuple(statics))
        return Frame(framedef, cells, nodes, tuple(roots), tuple(owners)), dyn

    def values(self) -> list[Any]:
        """The current values of the caller's cells, in leaf order."""
        return [c._value for c in self.cells]

    def check_trace(self) -> None:
        """Refuse to land values in cells that belong to another JAX trace."""
        now = current_trace()
        mine = self.trace
        if mine is now or mine is None:
            return
        if mine is _MIXED or mine != now:
            for c in self.cells:  # cells and plain array slots alike
                c._check_trace("update")

    def land(self, landing: Landing, new: list[Any], out: Any) -> Any:
        """Write the traced call's results into the caller's graph; return its output."""
        self.check_trace()
        cells = self.cells
        if landing.unchanged:
            if landing.written is None:
                for cell, value in zip(cells, new):
                    cell._value = value
            else:
                for i, value in zip(landing.written, new):
                    cells[i]._value = value
            if not landing.n_outs:
                return out
            return self._land_outputs(landing, out, dict(enumerate(self.nodes)))
        # The function changed the structure: rebuild the whole walk, refilling the
        # caller's surviving objects and cells in place.
        assert landing.graphdef is not None
        nodes = self.nodes
        reuse = {o: nodes[i] for o, i in landing.reuse}
        if landing.kept:
            new = _with_kept(new, landing.kept, [c._value for c in cells])
        root, _ = build_node(landing.graphdef.node, new, {}, reuse)
        epoch.bump()
        if not landing.n_outs:
            return out
        return _fill_nodes(out, list(root[1]))

    def _land_outputs(self, landing: Landing, out: Any, built: dict[int, Any]) -> Any:
        assert landing.graphdef is not None
        outs_node = landing.graphdef.node[1][1]
        leaves, treedef = _flatten_outs(out)
        made = {leaf.position: leaf for leaf in leaves if isinstance(leaf, NodeOut)}
        # In walk order, so that an output reaching an earlier one finds it built.
        nodes = [build_node(sub, made[j].leaves, built, None)[0] for j, sub in enumerate(outs_node[1])]
        return _put_nodes(leaves, treedef, nodes)


def _labelled_nodes(
    entries: list[tuple[int | str, Any]], static: Callable[[int | str], bool] | None
) -> list[tuple[Path, Any]]:
    """The graph nodes among a call's arguments, each with a path naming where it was passed
    (``args[0]``, ``args[1]['enc']``, ``kwargs['x']``): what tree mode checks."""
    found: list[tuple[Path, Any]] = []
    for key, value in entries:
        if static is not None and static(key):
            continue
        label = f"args[{key}]" if isinstance(key, int) else f"kwargs[{key!r}]"
        pairs: list[tuple[Any, Any]] = jax.tree_util.tree_flatten_with_path(value, is_leaf=is_graph_node)[0]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # jax: untyped key paths
        for where, leaf in pairs:
            if is_graph_node(leaf):
                found.append(((label + jax.tree_util.keystr(where),), leaf))  # pyright: ignore[reportUnknownMemberType]
    return found


def _with_kept(new: list[Any], kept: tuple[tuple[int, int], ...], old: list[Any]) -> list[Any]:
    """The full leaf list: the caller's old values at the kept places, ``new`` elsewhere."""
    leaves: list[Any] = [None] * (len(new) + len(kept))
    for i, j in kept:
        leaves[i] = old[j]
    filled = {i for i, _ in kept}
    feed = iter(new)
    for i in range(len(leaves)):
        if i not in filled:
            leaves[i] = next(feed)
    return leaves


def _flatten_outs(out: Any) -> tuple[list[Any], Any]:
    return tree_flatten(out, is_leaf=lambda x: isinstance(x, NodeOut))


def _put_nodes(leaves: list[Any], treedef: Any, nodes: list[Any]) -> Any:
    """The output with each ``NodeOut`` replaced by the module it stands for."""
    return tree_unflatten(treedef, [nodes[x.position] if isinstance(x, NodeOut) else x for x in leaves])


def _fill_nodes(out: Any, nodes: list[Any]) -> Any:
    return _put_nodes(*_flatten_outs(out), nodes)


_MIXED = object()
