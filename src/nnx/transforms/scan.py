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
RNG streams with a single key in scanned state are forked, one key per step;
carried streams advance their counter each step.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar, overload

import jax.numpy as jnp
from typing_extensions import ParamSpec

from nnx.transforms.axes import Axis, Carry, Fork, _CarryType, arg_specs, cell_axes, dyn_axes, forked_streams, infer_size
import nnx.jaxapi as jx
from nnx.jaxapi import tree_map
from nnx.transforms.lift import DYN, Frame, FrameDef, Landing, classify

P = ParamSpec("P")
R = TypeVar("R")
_WHERE = "nnx.scan"


def _split_out(out: Any, out_axes: Any) -> tuple[Any, list[tuple[int, Any]]]:
    """The function's output as (carry, [(axis, stacked output), ...])."""
    if isinstance(out_axes, _CarryType):
        return out, []
    if isinstance(out_axes, int):
        return None, [(out_axes, out)]
    outs: tuple[Any, ...] = out if type(out) is tuple else ()  # pyright: ignore[reportUnknownVariableType]
    if len(outs) != len(out_axes):
        raise ValueError(f"{_WHERE}: out_axes={out_axes!r} needs the function to return a tuple of {len(out_axes)}.")
    carry: Any = None
    stacked: list[tuple[int, Any]] = []
    for spec, value in zip(out_axes, outs):
        if isinstance(spec, _CarryType):
            carry = value
        elif isinstance(spec, int):
            stacked.append((spec, value))
        else:
            raise ValueError(f"{_WHERE}: out_axes entries must be nnx.Carry or an int, got {spec!r}.")
    return carry, stacked


def _join_out(out_axes: Any, carry: Any, stacked: list[Any]) -> Any:
    if isinstance(out_axes, _CarryType):
        return carry
    if isinstance(out_axes, int):
        return stacked[0]
    feed = iter(stacked)
    return tuple(carry if isinstance(spec, _CarryType) else next(feed) for spec in out_axes)


def _to_front(tree: Any, axis: int) -> Any:
    return tree if axis == 0 else tree_map(lambda v: jnp.moveaxis(v, axis, 0), tree)


def _from_front(tree: Any, axis: int) -> Any:
    return tree if axis == 0 else tree_map(lambda v: jnp.moveaxis(v, 0, axis), tree)


@overload
def scan(
    fun: Callable[P, R],
    *,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    in_axes: Any = (Carry, 0),
    out_axes: Any = (Carry, 0),
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
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def scan(
    fun: Callable[P, R] | None = None,
    *,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    in_axes: Any = (Carry, 0),
    out_axes: Any = (Carry, 0),
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Loop ``fun`` over the scanned axes of its arguments, threading the carry."""
    if fun is None:
        return lambda f: scan(f, length=length, reverse=reverse, unroll=unroll, in_axes=in_axes, out_axes=out_axes)
    body_fun = fun

    @functools.wraps(fun)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        frame, dyn = Frame.of(args, kwargs)
        specs = arg_specs(in_axes, len(args), len(kwargs), _WHERE)
        axes, _ = cell_axes(frame, specs, _WHERE)
        values = frame.values()
        dspec = dyn_axes(specs)
        n = length if length is not None else infer_size(values, axes, dyn, dspec, _WHERE)
        fork: Fork | None = None
        streams = forked_streams(frame, axes, [False] * len(axes), scan=True)
        if streams:
            fork = Fork(frame, streams, n)
            fork.apply(values, axes)
        carried = [i for i, a in enumerate(axes) if not isinstance(a, int)]
        scanned = [i for i, a in enumerate(axes) if isinstance(a, int)]
        init = ([values[i] for i in carried], [d if isinstance(s, _CarryType) else None for d, s in zip(dyn, dspec)])
        xs = (
            [_to_front(values[i], _int(axes[i])) for i in scanned],
            [_to_front(d, s) if isinstance(s, int) else None for d, s in zip(dyn, dspec)],
        )
        broadcast = [d if s is None else None for d, s in zip(dyn, dspec)]
        body = _body(body_fun, frame.framedef, carried, scanned, dspec, broadcast, out_axes)
        (carry_cells, carry_out), (ys_cells, ys_out) = jx.scan(
            body, init, xs, length=n, reverse=reverse, unroll=unroll
        )
        new: list[Any] = [None] * len(values)
        for i, v in zip(carried, carry_cells):
            new[i] = v
        for i, v in zip(scanned, ys_cells):
            new[i] = _from_front(v, _int(axes[i]))
        frame.land(Landing(True, None, None, (), 0), new, None)
        if fork is not None:
            fork.restore()
        stacked = [_from_front(y, axis) for axis, y in zip(_stack_axes(out_axes), ys_out)]
        carry_at = [k for k, s in enumerate(dspec) if isinstance(s, _CarryType)]
        carry: Any = None
        if carry_at:  # the carry argument as the caller passed it, modules included
            final = [c if k in carry_at else d for k, (c, d) in enumerate(zip(carry_out, dyn))]
            rebuilt, rebuilt_kw = frame.framedef.reassemble(frame.roots, final)
            carry = [*rebuilt, *rebuilt_kw.values()][carry_at[0]]
        return _join_out(out_axes, carry, stacked)  # type: ignore[no-any-return]

    return wrapper


def _int(axis: Axis) -> int:
    assert isinstance(axis, int)
    return axis


def _stack_axes(out_axes: Any) -> list[int]:
    """The axes of the stacked outputs, in order."""
    if isinstance(out_axes, _CarryType):
        return []
    if isinstance(out_axes, int):
        return [out_axes]
    return [spec for spec in out_axes if isinstance(spec, int)]


def _body(
    fun: Callable[..., Any],
    framedef: FrameDef,
    carried: list[int],
    scanned: list[int],
    dspec: list[Any],
    broadcast: list[Any],
    out_axes: Any,
) -> Callable[[Any, Any], Any]:
    n_leaves = len(carried) + len(scanned)

    def body(carry: Any, x: Any) -> Any:
        carry_cells, carry_dyn = carry
        x_cells, x_dyn = x
        values: list[Any] = [None] * n_leaves
        for i, v in zip(carried, carry_cells):
            values[i] = v
        for i, v in zip(scanned, x_cells):
            values[i] = v
        dyn = [
            c if isinstance(s, _CarryType) else xd if isinstance(s, int) else b
            for c, xd, b, s in zip(carry_dyn, x_dyn, broadcast, dspec)
        ]
        args, kwargs, entered = framedef.enter(values, dyn)
        out = fun(*args, **kwargs)
        _, new, _ = framedef.leave(entered, None, where=_WHERE, forward=False, structure=False)
        carry_out, stacked = _split_out(out, out_axes)
        if any(classify(y)[0] is not DYN for _, y in stacked):
            raise ValueError(
                f"{_WHERE}: stacked outputs may not hold modules; keep modules in the carry "
                "or in the scanned arguments, whose state is stacked for you."
            )
        carry_dyn_out = _carry_dyn(carry_out, carry_dyn, dspec, framedef)
        return ([new[i] for i in carried], carry_dyn_out), ([new[i] for i in scanned], [y for _, y in stacked])

    return body


def _carry_dyn(carry_out: Any, carry_dyn: list[Any], dspec: list[Any], framedef: FrameDef) -> list[Any]:
    """Put the function's carry output where the carry argument was (modules in the
    carry travel as state; only the rest of the carry goes here)."""
    positions = [k for k, s in enumerate(dspec) if isinstance(s, _CarryType)]
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
