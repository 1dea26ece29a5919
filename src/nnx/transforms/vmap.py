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
The function may not change the structure of its module arguments.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar, overload

from typing_extensions import ParamSpec

from nnx.modes import tree_for
from nnx.transforms.axes import Fork, arg_specs, cell_axes, forked_streams, infer_size, split_specs
import nnx.jaxapi as jx
from nnx.transforms.lift import Frame

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

    @functools.wraps(fun)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        frame, dyn = Frame.of(args, kwargs, tree=tree)
        specs = arg_specs(in_axes, len(args), len(kwargs), where)
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
        mapped = jx.vmap(
            frame.framedef.pure(fun, where, forward=False, structure=False),
            in_axes=(axes, *dspec),
            out_axes=(None, axes, out_axes),
            axis_size=axis_size,
            axis_name=axis_name,
            **vmap_kwargs,
        )
        landing, new, out = mapped(values, *dyn)
        result: R = frame.land(landing, new, out)
        if fork is not None:
            fork.restore()
        return result

    return wrapper


def _size_or_none(values: list[Any], axes: list[Any], dyn: list[Any], dspec: list[Any]) -> int | None:
    try:
        return infer_size(values, axes, dyn, dspec, "nnx.vmap")
    except ValueError:
        return None
