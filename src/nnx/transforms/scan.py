"""``nnx.scan``: ``jax.lax.scan`` over functions that take modules.

``in_axes`` says, per argument, what the loop does with it: ``nnx.Carry``
threads it from one iteration to the next, an int scans over that axis,
``None`` broadcasts it. For module arguments the spec may be
``nnx.StateAxes`` per kind. Module state that is broadcast is *carried*:
a shared BatchNorm used by every iteration updates its statistics in turn,
and the caller sees the final ones. Scanned state (a stack of layers made
with ``nnx.vmap``) is sliced per iteration and restacked with the writes::

    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
    def forward(x, block):          # block: one layer of the stack
        return block(x)

    y = forward(x, blocks)

``out_axes`` has one entry per output: ``nnx.Carry`` for the carry, an int to
stack. The defaults ``(nnx.Carry, 0)`` give ``jax.lax.scan``'s ``f(c, x) -> (c, y)``.
An entry of ``in_axes``/``out_axes`` may be a pytree prefix of its argument or
output (``{'a': 0, 'b': None}``), as in ``jax.vmap``.
RNG streams with a single key in scanned state are forked, one key per step;
carried streams advance their counter each step.

Like ``nnx.jit``, the loop is compiled once per structure (the module graph,
the axes, the arguments' tree structure and the length) and reused: calling
the scanned function again outside ``jit`` does not trace the body again.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, TypeVar, cast, overload

import jax.numpy as jnp
from typing_extensions import ParamSpec

from nnx.modes import tree_for
from nnx.transforms.axes import (
    Axis,
    Carry,
    Fork,
    StateAxes,
    _CarryType,
    arg_specs,
    by_position,
    refuse_node_prefix,
    broadcast_prefix,
    cell_axes,
    forked_streams,
    infer_size,
    split_specs,
)
import nnx.jaxapi as jx
from nnx.jaxapi import tree_flatten, tree_unflatten
from nnx.objects import is_array
from nnx.transforms.metadata import with_axis_names
from nnx.transforms.lift import DYN, STATIC, Frame, FrameDef, Landing, classify, is_graph_node

P = ParamSpec("P")
R = TypeVar("R")
_WHERE = "nnx.scan"


def _top_level(axes: Any) -> list[Any]:
    """The entries of an ``in_axes``/``out_axes`` spec (one spec: itself)."""
    return list(cast("tuple[Any, ...]", axes)) if isinstance(axes, (tuple, list)) else [axes]


def _check_axes(in_axes: Any, out_axes: Any) -> None:
    """Refuse, when the scan is made, axes that cannot describe a loop (as Flax does,
    with its words): two carries, a carry going in but not out (or out but not in),
    and stacked outputs that would be broadcast."""
    for name, axes in (("in_axes", in_axes), ("out_axes", out_axes)):
        if sum(isinstance(a, _CarryType) for a in _top_level(axes)) > 1:
            raise ValueError(
                f"{_WHERE}: Found multiple Carry definitions in {name}={axes!r}; the loop has one carry. "
                "Carry several values as one tuple (or module) in a single nnx.Carry argument."
            )
    carry_in = any(isinstance(a, _CarryType) for a in _top_level(in_axes))
    carry_out = any(isinstance(a, _CarryType) for a in _top_level(out_axes))
    if carry_in != carry_out:
        raise ValueError(
            f"{_WHERE}: If one of in_axes or out_axes has Carry, the other must also have Carry: got "
            f"in_axes={in_axes!r}, out_axes={out_axes!r}. The carry each step receives is the one the previous step returned."
        )
    for a in _top_level(out_axes):
        if a is None or isinstance(a, StateAxes):
            raise ValueError(
                f"{_WHERE}: Cannot broadcast output state. Got {a!r} in out_axes={out_axes!r}, but a scan's "
                "outputs are stacked, one slice per iteration. Give an int axis, or return the value in the carry (nnx.Carry)."
            )


def _split_out(out: Any, out_axes: Any) -> tuple[Any, list[tuple[Any, Any]]]:
    """The function's output as (carry, [(axis spec, stacked output), ...])."""
    if isinstance(out_axes, _CarryType):
        return out, []
    if not isinstance(out_axes, tuple):
        return None, [(out_axes, out)]
    outs: tuple[Any, ...] = out if type(out) is tuple else ()  # pyright: ignore[reportUnknownVariableType]
    specs: tuple[Any, ...] = out_axes  # pyright: ignore[reportUnknownVariableType]  # Any narrowed to tuple[Unknown, ...]
    if len(outs) != len(specs):
        raise ValueError(f"{_WHERE}: out_axes={specs!r} needs the function to return a tuple of {len(specs)}.")
    carry: Any = None
    stacked: list[tuple[Any, Any]] = []
    for spec, value in zip(specs, outs):
        if isinstance(spec, _CarryType):
            carry = value
        else:
            stacked.append((spec, value))
    return carry, stacked


def _join_out(out_axes: Any, carry: Any, stacked: list[Any]) -> Any:
    if isinstance(out_axes, _CarryType):
        return carry
    if not isinstance(out_axes, tuple):
        return stacked[0]
    feed = iter(stacked)
    return tuple(carry if isinstance(spec, _CarryType) else next(feed) for spec in out_axes)  # pyright: ignore[reportUnknownVariableType]


def _int_axis(axis: Any, where: str) -> int:
    if isinstance(axis, int) and not isinstance(axis, bool):
        return axis
    if axis is None:  # Flax's word for it, so that its users recognise the error
        raise ValueError(
            f"{where}: Cannot broadcast output state: an out_axes entry is None, but a scan's outputs are "
            "stacked, one slice per iteration. Give an int axis, or return the value in the carry (nnx.Carry)."
        )
    raise ValueError(f"{where} entries must be nnx.Carry, an int, or a pytree prefix of ints; got {axis!r}.")


def _move(tree: Any, spec: Any, to_front: bool) -> Any:
    """Move each leaf's scan axis (from the prefix ``spec``) to the front, or back."""
    leaves, treedef = tree_flatten(tree)
    axes = [_int_axis(a, f"{_WHERE}: out_axes") for a in broadcast_prefix(spec, tree, f"{_WHERE}: out_axes")]
    moved = [
        leaf if axis == 0 else jnp.moveaxis(leaf, axis, 0) if to_front else jnp.moveaxis(leaf, 0, axis)
        for leaf, axis in zip(leaves, axes)
    ]
    return tree_unflatten(treedef, moved)


def _to_front(value: Any, axis: int) -> Any:
    return value if axis == 0 else jnp.moveaxis(value, axis, 0)


def _from_front(value: Any, axis: int) -> Any:
    return value if axis == 0 else jnp.moveaxis(value, 0, axis)


_STATIC = "static"  # a broadcast leaf that is not an array: passed to the body as is


class _Static:
    """A broadcast leaf that is not an array, compared by value (by identity if unhashable)."""

    __slots__ = ("value", "_key")

    def __init__(self, value: Any) -> None:
        self.value = value
        try:
            hash(value)
            self._key: Any = (True, value)
        except TypeError:
            self._key = (False, id(value))

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Static) and self._key == other._key and (self._key[0] or self.value is other.value)


class _DynPlan:
    """How one non-module argument travels through the loop: the carry, or its leaves
    split into scanned (with their axes), broadcast arrays, and other broadcast values
    (Python flags and the like), which stay Python values inside the body, as they
    would in a closure, and are part of the cache key."""

    __slots__ = ("carry", "treedef", "axes", "statics", "_key")

    def __init__(self, carry: bool, treedef: Any, axes: tuple[int | str | None, ...], statics: tuple[_Static, ...]) -> None:
        self.carry = carry
        self.treedef = treedef
        self.axes = axes
        self.statics = statics
        self._key = (carry, treedef, axes, statics)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _DynPlan) and self._key == other._key


def _dyn_plan(d: Any, spec: Any, pattern: Any) -> tuple[_DynPlan, list[Any]]:
    """The plan for one dyn argument and its leaves (none for the carry, which travels whole)."""
    if isinstance(spec, _CarryType):
        return _DynPlan(True, None, (), ()), []
    if pattern is STATIC:
        return _DynPlan(False, tree_flatten(None)[1], (), ()), []
    leaves, treedef = tree_flatten(d, is_leaf=is_graph_node)
    axes: list[int | str | None] = []
    statics: list[_Static] = []
    for leaf, a in zip(leaves, broadcast_prefix(spec, d, f"{_WHERE}: in_axes")):
        if isinstance(a, _CarryType):
            raise ValueError(f"{_WHERE}: nnx.Carry marks a whole argument, not a part of one (in_axes={spec!r}).")
        if a is not None:
            axes.append(_int_axis(a, f"{_WHERE}: in_axes"))
        elif is_array(leaf):
            axes.append(None)
        else:
            axes.append(_STATIC)
            statics.append(_Static(leaf))
    return _DynPlan(False, treedef, tuple(axes), tuple(statics)), leaves


@overload
def scan(
    fun: Callable[P, R],
    *,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    in_axes: Any = (Carry, 0),
    out_axes: Any = (Carry, 0),
    graph: bool | None = None,
    graph_updates: bool | None = None,
    transform_metadata: Mapping[str, Any] | None = None,
) -> Callable[P, R]: ...
@overload
def scan(
    fun: None = None,
    *,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    in_axes: Any = (Carry, 0),
    out_axes: Any = (Carry, 0),
    graph: bool | None = None,
    graph_updates: bool | None = None,
    transform_metadata: Mapping[str, Any] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def scan(
    fun: Callable[P, R] | None = None,
    *,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    in_axes: Any = (Carry, 0),
    out_axes: Any = (Carry, 0),
    graph: bool | None = None,
    graph_updates: bool | None = None,
    transform_metadata: Mapping[str, Any] | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Loop ``fun`` over the scanned axes of its arguments, threading the carry.
    ``graph=False``: tree mode (``nnx.modes``); ``graph_updates`` is accepted.
    ``transform_metadata={nnx.PARTITION_NAME: name}``: each step's Variables have the
    scanned axis's sharding name removed (``nnx.transform_metadata``)."""
    if fun is None:
        return lambda f: scan(
            f, length=length, reverse=reverse, unroll=unroll, in_axes=in_axes, out_axes=out_axes, graph=graph,
            graph_updates=graph_updates, transform_metadata=transform_metadata,
        )  # fmt: skip
    tree = tree_for(_WHERE, graph, graph_updates)
    refuse_node_prefix(in_axes, "in_axes", _WHERE)
    refuse_node_prefix(out_axes, "out_axes", _WHERE)
    _check_axes(in_axes, out_axes)
    body_fun = with_axis_names(fun, in_axes, out_axes, transform_metadata) if transform_metadata else fun
    compiled: dict[Any, Callable[..., Any]] = {}

    @functools.wraps(fun)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        pos, named = by_position(body_fun, in_axes, args, kwargs)
        frame, dyn = Frame.of(pos, named, tree=tree)
        specs = arg_specs(in_axes, len(pos), len(named), _WHERE)
        root_specs, dspec = split_specs(frame, specs, _WHERE)
        axes, _ = cell_axes(frame, root_specs, _WHERE)
        values = frame.values()
        n = length if length is not None else infer_size(values, axes, dyn, dspec, _WHERE)
        fork: Fork | None = None
        streams = forked_streams(frame, axes, [False] * len(axes), scan=True)
        if streams:
            fork = Fork(frame, streams, n)
            fork.apply(values, axes)
        framedef = frame.framedef
        plans_and_leaves = [_dyn_plan(d, s, p) for d, s, p in zip(dyn, dspec, framedef.patterns)]
        plans = tuple(p for p, _ in plans_and_leaves)
        key = (framedef, tuple(axes), plans, n)
        run = compiled.get(key)
        if run is None:
            run = compiled[key] = _compile(body_fun, framedef, list(axes), list(plans), n, reverse, unroll, out_axes)
        carried = [v for v, a in zip(values, axes) if not isinstance(a, int)]
        scanned = [v for v, a in zip(values, axes) if isinstance(a, int)]
        carry_dyn = [d if plan.carry else None for d, plan in zip(dyn, plans)]
        xs_dyn = [[x for x, a in zip(leaves, plan.axes) if isinstance(a, int)] for plan, leaves in plans_and_leaves]
        bcast_dyn = [[x for x, a in zip(leaves, plan.axes) if a is None] for plan, leaves in plans_and_leaves]
        new, carry_out, stacked = run(carried, scanned, carry_dyn, xs_dyn, bcast_dyn)
        frame.land(Landing(True, None, None, (), 0), new, None)
        if fork is not None:
            fork.restore()
        # By spec, not by plan: a module carry is no dyn argument, and comes back as the
        # caller's object, which landing has just updated.
        carry_at = [k for k, spec in enumerate(specs) if isinstance(spec, _CarryType)]
        carry: Any = None
        if carry_at:  # the carry argument as the caller passed it, modules included
            final = [c if k in carry_at else d for k, (c, d) in enumerate(zip(carry_out, dyn))]
            rebuilt, rebuilt_kw = framedef.reassemble(frame.roots, final)
            carry = [*rebuilt, *rebuilt_kw.values()][carry_at[0]]
        return _join_out(out_axes, carry, stacked)  # type: ignore[no-any-return]

    return wrapper


def _compile(
    fun: Callable[..., Any],
    framedef: FrameDef,
    axes: list[Axis],
    plans: list[_DynPlan],
    n: int,
    reverse: bool,
    unroll: int | bool,
    out_axes: Any,
) -> Callable[..., Any]:
    """The jitted loop for one structure: ``(carried, scanned, carry dyn, scanned dyn
    leaves, broadcast dyn leaves) -> (new leaf values, carry dyn out, stacked outputs)``."""
    carried = [i for i, a in enumerate(axes) if not isinstance(a, int)]
    scanned = [i for i, a in enumerate(axes) if isinstance(a, int)]
    scan_axes = [_int(axes[i]) for i in scanned]
    n_leaves = len(axes)

    def body(bcast_dyn: list[list[Any]], carry: Any, x: Any) -> Any:
        carry_cells, carry_dyn = carry
        x_cells, x_dyn = x
        values: list[Any] = [None] * n_leaves
        for i, v in zip(carried, carry_cells):
            values[i] = v
        for i, v in zip(scanned, x_cells):
            values[i] = v
        dyn = [c if plan.carry else _rejoin(plan, xs, bs) for plan, c, xs, bs in zip(plans, carry_dyn, x_dyn, bcast_dyn)]
        args, kwargs, entered = framedef.enter(values, dyn)
        out = fun(*args, **kwargs)
        _, new, _ = framedef.leave(entered, None, where=_WHERE, forward=False, structure=False)
        carry_out, stacked = _split_out(out, out_axes)
        if any(classify(y)[0] is not DYN for _, y in stacked):
            raise ValueError(
                f"{_WHERE}: stacked outputs may not hold modules; keep modules in the carry "
                "or in the scanned arguments, whose state is stacked for you."
            )
        carry_dyn_out = _carry_dyn(carry_out, carry_dyn, plans, framedef)
        return ([new[i] for i in carried], carry_dyn_out), ([new[i] for i in scanned], [y for _, y in stacked])

    def run(
        carry_cells: list[Any], scan_cells: list[Any], carry_dyn: list[Any], xs_dyn: list[list[Any]], bcast_dyn: list[list[Any]]
    ) -> tuple[list[Any], list[Any], list[Any]]:
        xs = (
            [_to_front(v, a) for v, a in zip(scan_cells, scan_axes)],
            [[_to_front(v, a) for v, a in zip(leaves, _scan_axes(plan))] for plan, leaves in zip(plans, xs_dyn)],
        )
        (carry_out_cells, carry_out), (ys_cells, ys_out) = jx.scan(
            functools.partial(body, bcast_dyn), (carry_cells, carry_dyn), xs, length=n, reverse=reverse, unroll=unroll
        )
        new: list[Any] = [None] * n_leaves
        for i, v in zip(carried, carry_out_cells):
            new[i] = v
        for i, v, a in zip(scanned, ys_cells, scan_axes):
            new[i] = _from_front(v, a)
        stacked = [_move(y, spec, to_front=False) for spec, y in zip(_stack_specs(out_axes), ys_out)]
        return new, carry_out, stacked

    return jx.jit(run)


def _scan_axes(plan: _DynPlan) -> list[int]:
    return [a for a in plan.axes if isinstance(a, int)]


def _rejoin(plan: _DynPlan, scanned: list[Any], broadcast: list[Any]) -> Any:
    """One dyn argument rebuilt from its scanned slice, broadcast arrays and static leaves."""
    feed_x, feed_b, feed_s = iter(scanned), iter(broadcast), iter(plan.statics)
    leaves = [next(feed_b) if a is None else next(feed_s).value if a == _STATIC else next(feed_x) for a in plan.axes]
    return tree_unflatten(plan.treedef, leaves)


def _int(axis: Axis) -> int:
    assert isinstance(axis, int)
    return axis


def _stack_specs(out_axes: Any) -> list[Any]:
    """The axis specs of the stacked outputs, in order."""
    if isinstance(out_axes, _CarryType):
        return []
    if not isinstance(out_axes, tuple):
        return [out_axes]
    return [spec for spec in out_axes if not isinstance(spec, _CarryType)]  # pyright: ignore[reportUnknownVariableType]


def _carry_dyn(carry_out: Any, carry_dyn: list[Any], plans: list[_DynPlan], framedef: FrameDef) -> list[Any]:
    """Put the function's carry output where the carry argument was (modules in the
    carry travel as state; only the rest of the carry goes here)."""
    positions = [k for k, plan in enumerate(plans) if plan.carry]
    if not positions:
        return carry_dyn
    if len(positions) != 1:
        raise ValueError(f"{_WHERE}: in_axes may mark one argument nnx.Carry, not {len(positions)}.")
    k = positions[0]
    out = list(carry_dyn)
    pattern = framedef.patterns[k]
    if pattern is DYN:
        out[k] = carry_out
    else:
        got, _, d = classify(carry_out)
        if got != pattern:
            raise ValueError(
                f"{_WHERE}: the carry output {carry_out!r} does not have the structure of the carry input; "
                "return the carry with the same modules in the same places."
            )
        out[k] = d
    return out
