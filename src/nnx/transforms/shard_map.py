"""``nnx.shard_map``: run a function of modules on each shard of a device mesh.

Like ``jax.shard_map``: every argument has a ``PartitionSpec`` saying how it
is split over the mesh's axes, and the function sees one shard. A module
argument's entry is one spec for all of its state, an
``nnx.StateSharding({filter: spec})`` or a State of specs (``nnx.prefix``)::

    specs = nnx.StateSharding({nnx.PathContains("kernel"): P(None, "model"), ...: P()})

    @nnx.shard_map(mesh=mesh, in_specs=(specs, P("data")), out_specs=P("data"))
    def forward(model, x):
        return model(x)          # model.kernel is this device's column block

What the function writes into a module's state comes back with that leaf's
spec, so it must agree across the devices that replicate it. The function may
not change the structure of its module arguments. Keyword arguments are
replicated (``P()``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence, TypeVar, cast, overload

import jax
from jax.sharding import Mesh
from typing_extensions import ParamSpec

from nnx.jaxapi import partition_spec
from nnx.modes import tree_for
from nnx.transforms.axes import split_specs
from nnx.transforms.lift import Frame
from nnx.transforms.state_specs import check_shared_specs, leaf_specs

P = ParamSpec("P")
R = TypeVar("R")


@overload
def shard_map(
    f: Callable[P, R],
    /,
    *,
    mesh: Mesh,
    in_specs: Any,
    out_specs: Any,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **shard_map_kwargs: Any,
) -> Callable[P, R]: ...
@overload
def shard_map(
    f: None = None,
    /,
    *,
    mesh: Mesh,
    in_specs: Any,
    out_specs: Any,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **shard_map_kwargs: Any,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def shard_map(
    f: Callable[P, R] | None = None,
    /,
    *,
    mesh: Mesh,
    in_specs: Any,
    out_specs: Any,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **shard_map_kwargs: Any,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """``jax.shard_map`` for functions of modules: ``in_specs`` has one entry per positional
    argument (or one for all); other keywords go to ``jax.shard_map`` (``axis_names``,
    ``check_vma``). ``graph=False`` (tree mode, ``nnx.modes``): the arguments may share nothing."""
    where = "nnx.shard_map"
    tree = tree_for(where, graph, graph_updates)
    kwargs = shard_map_kwargs
    if f is None:
        return lambda fun: shard_map(
            fun, mesh=mesh, in_specs=in_specs, out_specs=out_specs, graph=graph, graph_updates=graph_updates, **kwargs
        )
    fun = f

    @functools.wraps(fun)
    def wrapper(*args: P.args, **kw: P.kwargs) -> R:
        frame, dyn = Frame.of(args, kw, tree=tree)
        specs = _arg_specs(in_specs, len(args), len(kw), where)
        root_specs, dspec = split_specs(frame, specs, where)
        replicated = partition_spec()
        given = leaf_specs(frame.framedef.graphdef.layout, root_specs, where)
        check_shared_specs(frame, root_specs, given, where)
        leaves = [replicated if s is None else s for s in given]
        mapped: Any = jax.shard_map(
            frame.framedef.pure(fun, where, forward=False, structure=False),
            mesh=mesh,
            in_specs=(leaves, *dspec),
            out_specs=(replicated, leaves, out_specs),
            **kwargs,
        )
        landing, new, out = mapped(frame.values(), *dyn)
        return cast(R, frame.land(landing, new, out))

    return wrapper


def _arg_specs(specs: Any, n_args: int, n_kwargs: int, where: str) -> list[Any]:
    if isinstance(specs, (tuple, list)):
        given = list(cast("Sequence[Any]", specs))
        if len(given) != n_args:
            raise ValueError(
                f"{where}: in_specs has {len(given)} entries but the function was called with {n_args} "
                "positional arguments; give one spec per argument (a module's applies to its state)."
            )
    else:
        given = [specs] * n_args
    return given + [partition_spec()] * n_kwargs
