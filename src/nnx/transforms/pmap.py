"""``nnx.pmap``: ``jax.pmap`` for functions of modules.

The same contract as ``nnx.vmap`` -- per-argument ``in_axes`` (an int, ``None``
or ``nnx.StateAxes`` for a module), state written back on its axis, RNG
streams with a single key forked so that each device draws its own keys,
returned modules stacked along ``out_axes`` -- with the mapped axis spread
over devices instead of vectorised. Its size must not exceed the number of
devices.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar, overload

import jax
from typing_extensions import ParamSpec

from nnx.modes import tree_for
from nnx.transforms.axes import Fork, arg_specs, by_position, refuse_node_prefix, cell_axes, forked_streams, infer_size, split_specs
from nnx.transforms.lift import Frame

P = ParamSpec("P")
R = TypeVar("R")


@overload
def pmap(
    fun: Callable[P, R], *, in_axes: Any = 0, out_axes: Any = 0, axis_name: Any = None, axis_size: int | None = None,
    graph: bool | None = None, graph_updates: bool | None = None, **pmap_kwargs: Any
) -> Callable[P, R]: ...
@overload
def pmap(
    fun: None = None, *, in_axes: Any = 0, out_axes: Any = 0, axis_name: Any = None, axis_size: int | None = None,
    graph: bool | None = None, graph_updates: bool | None = None, **pmap_kwargs: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def pmap(
    fun: Callable[P, R] | None = None,
    *,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_name: Any = None,
    axis_size: int | None = None,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **pmap_kwargs: Any,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Map ``fun`` over devices like ``jax.pmap``; module state is mapped per ``in_axes``
    (see ``nnx.vmap``). Other keywords go to ``jax.pmap``. ``graph=False`` (tree mode,
    ``nnx.modes``): the arguments may share nothing."""
    where = "nnx.pmap"
    tree = tree_for(where, graph, graph_updates)
    refuse_node_prefix(in_axes, "in_axes", where)
    refuse_node_prefix(out_axes, "out_axes", where)
    kwargs = pmap_kwargs
    if fun is None:
        return lambda f: pmap(
            f, in_axes=in_axes, out_axes=out_axes, axis_name=axis_name, axis_size=axis_size,
            graph=graph, graph_updates=graph_updates, **kwargs,
        )  # fmt: skip
    mapped_fun = fun

    @functools.wraps(mapped_fun)
    def wrapper(*args: P.args, **kw: P.kwargs) -> R:
        pos, named = by_position(mapped_fun, in_axes, args, kw)
        frame, dyn = Frame.of(pos, named, tree=tree)
        specs = arg_specs(in_axes, len(pos), len(named), where)
        root_specs, dspec = split_specs(frame, specs, where)
        axes, explicit = cell_axes(frame, root_specs, where)
        values = frame.values()
        streams = forked_streams(frame, axes, explicit, scan=False)
        fork: Fork | None = None
        if streams:
            n = axis_size if axis_size is not None else infer_size(values, axes, dyn, dspec, where)
            fork = Fork(frame, streams, n)
            fork.apply(values, axes)
        mapped: Any = jax.pmap(  # pyright: ignore[reportUnknownMemberType]  # jax: fun is a bare Callable
            frame.framedef.pure(mapped_fun, where, forward=False, structure=False),
            axis_name=axis_name,
            in_axes=(axes, *dspec),
            out_axes=(None, axes, out_axes),
            axis_size=axis_size,
            **kwargs,
        )
        landing, new, out = mapped(values, *dyn)
        result: R = frame.land(landing, new, out)
        if fork is not None:
            fork.restore()
        return result

    return wrapper
