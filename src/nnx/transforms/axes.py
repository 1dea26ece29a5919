"""Axis specs for module state: ``nnx.StateAxes`` and ``nnx.Carry``, and RNG forking.

``jax.vmap``'s ``in_axes`` says, per argument, which axis is mapped. A module
argument holds many kinds of state that often want different treatment: an
ensemble maps its parameters but broadcasts its batch statistics. So a module
argument's axis spec may be an ``int``/``None`` for all of its state, or a
``StateAxes`` mapping filters to axes, the first matching filter deciding::

    nnx.vmap(f, in_axes=(nnx.StateAxes({nnx.BatchStat: None, ...: 0}), 0))

``nnx.Carry`` marks, for ``nnx.scan``, the argument (or state) carried from
one iteration to the next.

RNG streams are forked by default: a stream holding a single key, reached
through a mapped (or scanned) argument, gives every member (iteration) its own
key, split from one key drawn from the caller's stream.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Sequence, cast

import jax
import jax.numpy as jnp

from nnx.filters import Everything, Filter, LeafKind, to_filter
from nnx.graph import _Slot, iter_graph
from nnx.rngs import RngStream
from nnx.jaxapi import tree_flatten, tree_unflatten
from nnx.state import Layout, State, path_str
from nnx.transforms.lift import NODE, Frame, Mixed, NodeOut, is_graph_node
from nnx.variables import RngCount, RngKey, Variable


class _CarryType:
    """The ``nnx.Carry`` marker."""

    _instance: _CarryType | None = None

    def __new__(cls) -> _CarryType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "nnx.Carry"


#: In ``nnx.scan``'s ``in_axes``/``out_axes``: this argument (or state) is the carry.
Carry = _CarryType()

Axis = int | None | _CarryType


class StateAxes:
    """Per-kind axes for a module argument: ``StateAxes({nnx.Param: 0, nnx.BatchStat: None})``.

    Each leaf takes the axis of the first filter matching it; a leaf matching none
    is an error (end with ``...: axis`` to give the rest an axis).
    """

    def __init__(self, axes: Mapping[Filter, Axis]) -> None:
        self.filters = tuple(axes)
        self.axes = tuple(axes.values())
        self._compiled = [to_filter(f) for f in self.filters]

    def axis_for(self, path: tuple[Any, ...], cell: Any, where: str) -> tuple[Axis, bool]:
        """The axis of one leaf, and whether a specific filter (not ``...``) chose it."""
        slot = isinstance(cell, _Slot)
        kind: LeafKind = None if slot else cast(LeafKind, type(cell))
        return self.axis_for_kind(path, kind, cell._value if slot else cell, where)

    def axis_for_kind(self, path: tuple[Any, ...], kind: LeafKind, value: Any, where: str) -> tuple[Axis, bool]:
        """``axis_for`` of a leaf known by its kind (a Variable type, ``None`` for an array)."""
        for f, axis in zip(self._compiled, self.axes):
            if f.matches(path, kind, None if f.structural else value):
                return axis, not isinstance(f, Everything)
        raise ValueError(
            f"{where}: no filter of {self!r} matches the state at '{path_str(path)}' "
            f"({kind.__name__ if kind else 'array'}). Add `...: axis` as the last entry."
        )

    def __repr__(self) -> str:
        inner = ", ".join(f"{f!r}: {a!r}" for f, a in zip(self.filters, self.axes))
        return f"StateAxes({{{inner}}})"


def _is_spec_leaf(x: Any) -> bool:
    return x is None or isinstance(x, (StateAxes, _CarryType, State))


def broadcast_prefix(prefix: Any, full: Any, where: str) -> list[Any]:
    """One entry of ``prefix`` per leaf of ``full`` (graph nodes count as leaves):
    ``prefix`` is a pytree prefix of ``full``, as ``jax.vmap``'s ``in_axes`` are."""
    specs, prefix_def = tree_flatten(prefix, is_leaf=_is_spec_leaf)
    try:
        subtrees: list[Any] = prefix_def.flatten_up_to(full)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{where}: {prefix!r} is not a pytree prefix of the argument it is given for "
            f"({e}); give one entry for the whole argument or a tree with its structure."
        ) from None
    out: list[Any] = []
    for spec, sub in zip(specs, subtrees):
        out.extend([spec] * len(tree_flatten(sub, is_leaf=is_graph_node)[0]))
    return out


def by_position(fun: Callable[..., Any], axes: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` with keyword arguments moved to their places in ``fun``'s
    signature when ``axes`` (``in_axes``, one entry per parameter) has more entries than
    the call has positional arguments: ``vmap(Model.__init__, in_axes=(0, None))`` called
    as ``Model(rngs=r)`` maps ``self`` and ``rngs`` by those two entries. Parameters left
    out take their defaults, as in Flax. A call that does not bind is passed on as it was."""
    if not isinstance(axes, (list, tuple)) or len(cast("Sequence[Any]", axes)) <= len(args):
        return args, kwargs
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except (TypeError, ValueError):  # no signature, or a call that does not fit it: fun will say
        return args, kwargs
    bound.apply_defaults()
    return tuple(bound.args), dict(bound.kwargs)


def refuse_node_prefix(prefix: Any, name: str, where: str) -> None:
    """Refuse a module, container or Variable given where a spec belongs (``in_axes=model``):
    a spec says how each argument is treated; the argument itself is no spec."""
    if prefix is None or isinstance(prefix, (int, StateAxes, _CarryType)):
        return  # the common cases, without a walk
    for leaf in tree_flatten(prefix, is_leaf=is_graph_node)[0]:
        if is_graph_node(leaf):
            variable = " (Variables prefixes are not supported)" if isinstance(leaf, Variable) else ""
            raise ValueError(
                f"{where}: {name} holds a {type(cast(object, leaf)).__name__}: Graph nodes are not allowed as prefixes{variable}. "
                f"{name} says how each argument is treated; give ints, None or nnx.StateAxes({{filter: axis}}) "
                "(for shardings: PartitionSpecs or nnx.StateSharding), not the module or Variable itself."
            )


def arg_specs(axes: Any, n_args: int, n_kwargs: int, where: str) -> list[Any]:
    """One axis spec per argument (positional, then keyword), from ``in_axes``."""
    if isinstance(axes, (list, tuple)):
        specs = list(cast("Sequence[Any]", axes))
        if len(specs) != n_args:
            raise ValueError(
                f"{where}: in_axes has {len(specs)} entries but the function was called with "
                f"{n_args} positional arguments; give one axis (int, None, nnx.StateAxes) per argument "
                "(arguments passed by keyword count where the function's signature puts them)."
            )
    else:
        specs = [axes] * n_args
    return specs + [0] * n_kwargs


def split_specs(frame: Frame, specs: Sequence[Any], where: str) -> tuple[list[Any], list[Any]]:
    """``(one spec per root node, one spec per dyn argument)`` from one spec per argument.

    An argument's spec may be a pytree prefix of the argument (``{'a': 0, 'b': None}``):
    for a pytree holding modules, each module takes the entry above it, and the rest of
    the argument its own entries. A ``StateAxes`` only concerns module state, so the
    non-module parts under it are broadcast.
    """
    root_specs: list[Any] = []
    dspec: list[Any] = []
    for pattern, spec in zip(frame.framedef.patterns, specs):
        if pattern is NODE:
            root_specs.append(spec)
            dspec.append(None)
        elif isinstance(pattern, Mixed):
            if _is_spec_leaf(spec) or isinstance(spec, int):
                leaves = [spec] * pattern.treedef.num_leaves
            else:
                shape = tree_unflatten(pattern.treedef, [0] * pattern.treedef.num_leaves)
                leaves = broadcast_prefix(spec, shape, f"{where}: in_axes")
            root_specs.extend(leaves[p] for p in pattern.positions)
            if isinstance(spec, _CarryType):
                dspec.append(spec)  # the whole argument is the carry
            else:
                dspec.append([None if p in pattern.positions or isinstance(a, StateAxes) else a for p, a in enumerate(leaves)])
        else:
            dspec.append(None if isinstance(spec, StateAxes) else spec)
    return root_specs, dspec


def cell_axes(frame: Frame, root_specs: Sequence[Any], where: str) -> tuple[list[Axis], list[bool]]:
    """The axis of each leaf of the frame (from its root's spec), and whether it was chosen explicitly."""
    axes: list[Axis] = []
    explicit: list[bool] = []
    per_leaf: dict[int, dict[Any, Any]] = {}  # a State spec (nnx.prefix) by path, built once
    for path, cell in zip(frame.framedef.graphdef.layout.paths, frame.cells):
        spec = root_specs[int(path[0])]  # a frame's paths start at a root's position
        axis, chosen = _axis_of(spec, path[1:], cell, per_leaf, where)
        axes.append(axis)
        explicit.append(chosen)
    _check_aliasing(frame, root_specs, axes, per_leaf, where)
    return axes, explicit


def _axis_of(spec: Any, path: tuple[Any, ...], cell: Any, per_leaf: dict[int, dict[Any, Any]], where: str) -> tuple[Axis, bool]:
    """The axis ``spec`` (a module argument's) gives the cell at ``path`` in that argument,
    and whether it was chosen explicitly."""
    spelled = isinstance(spec, State)  # every leaf's axis spelled out: each counts as chosen
    if spelled:
        spec = _state_entry(cast(State[Any], spec), per_leaf, path, where)
    if isinstance(spec, StateAxes):
        return spec.axis_for(path, cell, where)
    if spec is None or isinstance(spec, (int, _CarryType)):
        return spec, spelled
    raise TypeError(
        f"{where}: the axis spec {spec!r} for a module argument must be an int, None, "
        "nnx.Carry or nnx.StateAxes({filter: axis, ...})."
    )


def restructured_axes(
    frame: Frame, root_specs: Sequence[Any], axes: Sequence[Axis], layout: Layout, shapes: Sequence[Any], out_axes: Any, where: str
) -> list[Axis]:
    """The axis of each leaf of the graph a function left with a new structure (``layout``,
    whose paths start with 0 for the arguments' nodes and 1 for returned ones).

    A leaf the arguments already had keeps its axis; a new one in an argument takes the
    axis its argument's spec gives its kind (a ``StateAxes`` filter, or the one int or
    ``None``) -- so ``vmap(__init__, in_axes=(0, 0))`` stacks the layers it creates; a
    returned module's leaves take ``out_axes`` when that is an int or ``None``, else 0.
    """
    known = dict(zip(frame.framedef.graphdef.layout.paths, axes))
    out_axis: Axis = out_axes if out_axes is None or isinstance(out_axes, int) else 0
    per_leaf: dict[int, dict[Any, Any]] = {}
    found: list[Axis] = []
    for path, kind, shape in zip(layout.paths, layout.kinds, shapes):
        inner = tuple(path[1:])
        if path[0] != 0:
            found.append(out_axis)
        elif inner in known:
            found.append(known[inner])
        else:
            spec: Any = root_specs[int(inner[0])]
            if isinstance(spec, State):
                spec = _state_entry(spec, per_leaf, inner[1:], where)  # pyright: ignore[reportUnknownArgumentType]  # narrowed from Any
            if isinstance(spec, StateAxes):
                spec = spec.axis_for_kind(inner[1:], kind, shape, where)[0]
            found.append(cast(Axis, spec))
    return found


def _is_node_spec(x: Any) -> bool:
    return isinstance(x, (StateAxes, State))


def has_node_specs(out_axes: Any) -> bool:
    """Whether ``out_axes`` gives some returned module per-leaf axes (a ``StateAxes``, or a
    State of axes from ``nnx.prefix``)."""
    return any(_is_node_spec(a) for a in tree_flatten(out_axes, is_leaf=_is_spec_leaf)[0])


def without_node_specs(out_axes: Any) -> Any:
    """``out_axes`` with each ``StateAxes`` replaced by 0: the axes of a probing trace."""
    specs, treedef = tree_flatten(out_axes, is_leaf=_is_spec_leaf)
    return tree_unflatten(treedef, [0 if _is_node_spec(a) else a for a in specs])


def node_out_axes(out_axes: Any, out_shape: Any, landing: Any, where: str) -> Any:
    """``out_axes`` with each ``StateAxes`` turned into the axes of the returned module's
    leaves (a ``NodeOut`` of axes, matching the ``NodeOut`` the output holds there)."""
    specs, treedef = tree_flatten(out_axes, is_leaf=_is_spec_leaf)
    try:
        subtrees: list[Any] = treedef.flatten_up_to(out_shape)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{where}: out_axes {out_axes!r} is not a pytree prefix of the function's output ({e}); "
            "give one entry for the whole output or a tree with its structure."
        ) from None
    layout = landing.graphdef.layout if landing.graphdef is not None else None
    resolved: list[Any] = []
    for spec, sub in zip(specs, subtrees):
        if not _is_node_spec(spec):
            resolved.append(spec)
            continue
        if not isinstance(sub, NodeOut) or layout is None:
            raise ValueError(
                f"{where}: out_axes gives {spec!r} for a part of the output that is not a module "
                f"({type(sub).__name__}); nnx.StateAxes applies to a returned module's state."
            )
        j = sub.position
        per_leaf: dict[int, dict[Any, Any]] = {}
        leaf_axes: list[Axis] = []
        for path, kind in zip(layout.paths, layout.kinds):
            if path[0] == 1 and path[1] == j:
                inner = tuple(path[2:])
                if isinstance(spec, State):
                    leaf_axes.append(_state_entry(spec, per_leaf, inner, where))  # pyright: ignore[reportUnknownArgumentType]  # narrowed from Any
                else:
                    leaf_axes.append(cast(StateAxes, spec).axis_for_kind(inner, kind, None, where)[0])
        resolved.append(NodeOut(j, leaf_axes))
    return tree_unflatten(treedef, resolved)


def _check_aliasing(frame: Frame, root_specs: Sequence[Any], axes: list[Axis], per_leaf: dict[int, dict[Any, Any]], where: str) -> None:
    """A cell reachable from two module arguments must get one axis from both specs.

    The frame lists a shared cell once, under the first argument that reaches it, so a
    different axis from a later argument would be dropped without a word. Only arguments
    with differing specs can disagree, so the walk runs only then.
    """
    if len(frame.roots) < 2 or all(s is root_specs[0] for s in root_specs):
        return
    first = {id(cell): (axis, path) for axis, path, cell in zip(axes, frame.framedef.graphdef.layout.paths, frame.cells)}
    for position, root in enumerate(frame.roots):
        for path, value in iter_graph(root):
            cell: Any = value
            if id(cell) not in first or not isinstance(cell, Variable):
                continue
            axis, _ = _axis_of(root_specs[position], path, cell, per_leaf, where)
            kept, first_path = first[id(value)]
            if axis != kept:
                here, there = path_str(path), path_str(first_path[1:])
                raise ValueError(
                    f"{where}: Inconsistent aliasing detected: the same {type(value).__name__} is argument "
                    f"{frame.owners[int(first_path[0])]} at '{there}' with axis {kept!r} and argument "
                    f"{frame.owners[position]} at '{here}' with axis {axis!r} ({there}: {kept!r}, {here}: {axis!r}). "
                    "A shared cell is mapped one way; give both arguments the same axis for it, or pass the module once."
                )


def _state_entry(spec: State[Any], per_leaf: dict[int, dict[Any, Any]], path: tuple[Any, ...], where: str) -> Any:
    """The axis a State of axes (``nnx.prefix``) gives the leaf at ``path``."""
    table = per_leaf.get(id(spec))
    if table is None:
        table = per_leaf[id(spec)] = dict(zip(spec.paths, spec.leaves))
    if path not in table:
        raise ValueError(
            f"{where}: the State of axes given for a module argument has no entry for its state at "
            f"'{path_str(path)}'; build it from the module itself: nnx.prefix(module, {{filter: axis, ...}})."
        )
    return table[path]


def rng_streams(frame: Frame) -> list[tuple[int, int]]:
    """``(key index, count index)`` in the frame's leaves for every RNG stream it holds."""
    position = {id(c): i for i, c in enumerate(frame.cells)}
    found: list[tuple[int, int]] = []
    for node in frame.nodes:
        if isinstance(node, RngStream):
            key: object = node.__dict__.get("key")
            count: object = node.__dict__.get("count")
            if _is_a(key, RngKey) and _is_a(count, RngCount) and id(key) in position:
                found.append((position[id(key)], position[id(count)]))
    return found


def _is_a(value: object, kind: type) -> bool:
    return isinstance(value, kind)


class Fork:
    """RNG streams forked for one call: their member keys and how to settle the caller's.

    Nothing of the caller's is touched until the call succeeded: ``apply`` only puts
    the member keys into the values passed to JAX, and ``restore`` (called after the
    results landed) gives each stream back its key and advances its count by the one
    draw the fork made. A call that raises leaves the streams as they were.
    """

    def __init__(self, frame: Frame, streams: list[tuple[int, int]], n: int) -> None:
        self.frame = frame
        self.streams = streams
        self.n = n
        self.saved: list[tuple[int, Any]] = []

    def apply(self, values: list[Any], axes: list[Axis]) -> None:
        """Draw one key per stream from the caller, split it ``n`` ways into ``values``."""
        cells = self.frame.cells
        for k, c in self.streams:
            base, count = cells[k]._value, cells[c]._value
            key = jax.random.fold_in(base, count)
            self.saved += [(k, base), (c, count + 1)]  # the caller's stream advances by one draw
            values[k] = jax.random.split(key, self.n)
            values[c] = jnp.zeros((self.n,), dtype=jnp.uint32)
            axes[k] = axes[c] = 0

    def restore(self) -> None:
        """Put back the caller's keys and advanced counts (the members' streams are discarded)."""
        cells = self.frame.cells
        for i, value in self.saved:
            cells[i]._value = value


def forked_streams(frame: Frame, axes: list[Axis], explicit: list[bool], *, scan: bool) -> list[tuple[int, int]]:
    """The streams to fork: single-key streams whose state is mapped (for scan:
    scanned) or, for vmap, broadcast without an explicit filter asking for it."""
    chosen: list[tuple[int, int]] = []
    for k, c in rng_streams(frame):
        key = frame.cells[k]._value
        if getattr(key, "ndim", 1) != 0:
            continue  # already split: each member takes its own slice
        axis = axes[k]
        if scan:
            if isinstance(axis, int):
                chosen.append((k, c))
        elif isinstance(axis, int) or (axis is None and not explicit[k]):
            chosen.append((k, c))
    return chosen


def infer_size(values: Sequence[Any], axes: Sequence[Any], dyn: Sequence[Any], dyn_spec: Sequence[Any], where: str) -> int:
    """The mapped size, from the first mapped leaf."""
    for v, a in zip(values, axes):
        if isinstance(a, int) and hasattr(v, "shape"):
            return int(v.shape[a])
    for d, a in zip(dyn, dyn_spec):
        if a is None or isinstance(a, _CarryType) or d is None:
            continue
        leaves = tree_flatten(d, is_leaf=is_graph_node)[0]
        for leaf, axis in zip(leaves, broadcast_prefix(a, d, where)):
            if isinstance(axis, int) and not isinstance(axis, bool):
                return int(jnp.shape(leaf)[axis])
    raise ValueError(
        f"{where}: cannot tell the size of the mapped axis: no argument is mapped. "
        "Pass axis_size=n (vmap) or length=n (scan)."
    )
