"""``nnx.vmap``: vectorise a function over module state and arrays.

A module argument's state is mapped along the axis its spec gives (an int,
``None`` to broadcast, or ``nnx.StateAxes`` per kind); whatever the function
writes into it comes back on the same axis. Modules the function *returns*
come back with their state stacked along ``out_axes`` -- the way to create an
ensemble or a stack of layers for ``nnx.scan``::

    @nnx.vmap(in_axes=0, out_axes=0)
    def create(rngs: nnx.Rngs) -> Block:
        return Block(rngs=rngs)

    blocks = create(nnx.Rngs(0).fork(split=8))   # or nnx.vmap(..., axis_size=8)(nnx.Rngs(0))

RNG streams with a single key are forked: each member draws from its own key.

The function may also add state to its module arguments, as Flax's
``vmap(__init__)`` idiom does; each new leaf takes the axis its argument's
spec gives its kind::

    class Stack(nnx.Module):
        @nnx.split_rngs(splits=8)
        @nnx.vmap(in_axes=(0, 0))
        def __init__(self, rngs: nnx.Rngs):
            self.block = Block(rngs=rngs)   # every leaf stacked: shape (8, ...)
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, TypeVar, cast, overload

from typing_extensions import ParamSpec

import nnx.jaxapi as jx
from nnx.modes import tree_for
from nnx.transforms.axes import (
    Fork, arg_specs, by_position, cell_axes, forked_streams, has_node_specs, infer_size, node_out_axes,
    refuse_node_prefix, restructured_axes, split_specs, without_node_specs,
)  # fmt: skip
from nnx.state import path_str
from nnx.transforms.lift import Frame, StructureChanged
from nnx.transforms.metadata import with_axis_names
from nnx.variables import Variable

P = ParamSpec("P")
R = TypeVar("R")


@overload
def vmap(
    fun: Callable[P, R],
    *,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_size: int | None = None,
    axis_name: Any = None,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **vmap_kwargs: Any,
) -> Callable[P, R]: ...
@overload
def vmap(
    fun: None = None,
    *,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_size: int | None = None,
    axis_name: Any = None,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **vmap_kwargs: Any,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def vmap(
    fun: Callable[P, R] | None = None,
    *,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_size: int | None = None,
    axis_name: Any = None,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **vmap_kwargs: Any,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Vectorise ``fun`` like ``jax.vmap``; module state is mapped per ``in_axes``.

    ``in_axes`` is one spec for all arguments or one per positional argument;
    a module argument's spec is an int, ``None`` or ``nnx.StateAxes``. ``out_axes``
    applies to the output (a returned module takes an int or ``None``).
    ``graph=False``: tree mode (``nnx.modes``); ``graph_updates`` is accepted,
    every update comes back.
    """
    if fun is None:
        return lambda f: vmap(
            f, in_axes=in_axes, out_axes=out_axes, axis_size=axis_size, axis_name=axis_name, graph=graph,
            graph_updates=graph_updates, **vmap_kwargs,
        )  # fmt: skip
    where = "nnx.vmap"
    tree = tree_for(where, graph, graph_updates)
    metadata = vmap_kwargs.pop("transform_metadata", None)
    if metadata:  # Flax's keyword: sharding names follow the mapped axis (nnx.transform_metadata)
        fun = with_axis_names(fun, in_axes, out_axes, metadata)
    refuse_node_prefix(in_axes, "in_axes", where)
    refuse_node_prefix(out_axes, "out_axes", where)
    node_specs = has_node_specs(out_axes)  # per-leaf axes for a returned module: decided once

    @functools.wraps(fun)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        pos, named = by_position(fun, in_axes, args, kwargs)
        frame, dyn = Frame.of(pos, named, tree=tree)
        specs = arg_specs(in_axes, len(pos), len(named), where)
        root_specs, dspec = split_specs(frame, specs, where)
        axes, explicit = cell_axes(frame, root_specs, where)
        values = frame.values()
        streams = forked_streams(frame, axes, explicit, scan=False)
        fork: Fork | None = None
        if streams:
            n = axis_size if axis_size is not None else _size_or_none(values, axes, dyn, dspec)
            if n is None:
                raise ValueError(
                    f"{where}: RNG streams must be split across members, but no argument is mapped "
                    "to tell how many; pass axis_size=n, or split the Rngs yourself: rngs.fork(split=n)."
                )
            fork = Fork(frame, streams, n)
            fork.apply(values, axes)
        def run(pure: Callable[..., Any], new_axes: Any, out_spec: Any = out_axes) -> Any:
            return jx.vmap(
                pure, in_axes=(axes, *dspec), out_axes=(None, new_axes, out_spec), axis_size=axis_size,
                axis_name=axis_name, **vmap_kwargs,
            )  # fmt: skip

        try:
            pure = frame.framedef.pure(fun, where, forward=False, structure=False)
            out_spec = out_axes
            if node_specs:
                # A returned module's StateAxes: its leaves (paths, kinds) are known after a trace.
                probe, _, out_shape = jx.eval_shape(run(pure, axes, without_node_specs(out_axes)), values, *dyn)
                out_spec = node_out_axes(out_axes, out_shape, probe, where)
            landing, new, out = run(pure, axes, out_spec)(values, *dyn)
        except StructureChanged:
            # The function added or replaced state (``vmap(__init__)`` building a stack of
            # layers): learn the new structure from a trace, give each leaf its axis, run.
            if node_specs:
                raise ValueError(
                    f"{where}: the function changed the structure of its module arguments and out_axes "
                    f"{out_axes!r} gives a returned module per-kind axes; the two do not go together. "
                    "Return the module (out_axes an int) or build it without changing the arguments."
                ) from None
            pure = frame.framedef.pure(fun, where, forward=False)
            probe, shapes, _ = jx.eval_shape(run(pure, 0), values, *dyn)
            assert probe.graphdef is not None
            layout = probe.graphdef.layout
            new_axes = restructured_axes(frame, root_specs, axes, layout, shapes, out_axes, where)
            try:
                landing, new, out = run(pure, new_axes)(values, *dyn)
            except ValueError as e:
                raise ValueError(_broadcast_new_state(frame, layout, new_axes, where, e)) from None
        except ValueError as e:
            said = _with_state_path(frame, where, e)
            if said is None:
                raise
            raise ValueError(said) from None
        result: R = frame.land(landing, new, out)
        if fork is not None:
            fork.restore()
        return result

    return wrapper


def _with_state_path(frame: Frame, where: str, error: ValueError) -> str | None:
    """JAX's "out_axes[1][i], got axis spec None but output was batched" names a leaf by its
    place in a flat list; say which state it is (or None: not that error)."""
    message = str(error).split("\n")[0]
    found = re.search(r"out_axes\[1\]\[(\d+)\]", message)
    if found is None or "got axis spec None" not in message:
        return None
    i = int(found[1])
    path, cell = frame.framedef.graphdef.layout.paths[i], frame.cells[i]
    kind = type(cast(object, cell)).__name__ if isinstance(cell, Variable) else "array"
    name = f"state '{path_str(path[1:])}' ({kind}) of argument {frame.owners[int(path[0])]}"
    return (
        f"{where}: {message[: found.start()]}{name}{message[found.end() :]}. That state is broadcast (axis None "
        "in in_axes), but the function wrote a value into it that differs across members; give it an axis "
        "(nnx.StateAxes({Kind: 0, ...: None})) or write only values that are the same for every member."
    )


def _broadcast_new_state(frame: Frame, layout: Any, new_axes: list[Any], where: str, error: ValueError) -> str:
    """What to say when the state a function added cannot come back on the axes its
    arguments' specs give it (new state under a broadcast spec that depends on mapped inputs)."""
    old = set(frame.framedef.graphdef.layout.paths)
    fresh = [(p, a) for p, a in zip(layout.paths, new_axes) if p[0] == 0 and tuple(p[1:]) not in old]
    added = [f"argument {frame.owners[int(p[1])]}: {path_str(p[2:])}" for p, _ in fresh]
    broadcast = [name for name, (_, a) in zip(added, fresh) if a is None]
    return (
        f"{where}: the function changed the structure of its module arguments (added state {added}); "
        f"new state is mapped on the axis its argument's spec gives it, and {broadcast} got None "
        f"(broadcast) but depends on mapped inputs. Give that argument an axis (in_axes, or "
        f"nnx.StateAxes({{filter: 0, ...: None}})), or create the state outside the transform. (JAX: {error})"
    )


def _size_or_none(values: list[Any], axes: list[Any], dyn: list[Any], dspec: list[Any]) -> int | None:
    try:
        return infer_size(values, axes, dyn, dspec, "nnx.vmap")
    except ValueError:
        return None
