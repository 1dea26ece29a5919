"""``nnx.eval_shape``: run a function abstractly and get abstract modules back.

``nnx.eval_shape(lambda: Model(rngs=nnx.Rngs(0)))`` builds the model without
computing anything: every array in the result is a ``jax.ShapeDtypeStruct``,
plain array attributes included (a NumPy one keeps its exact dtype, 64-bit too).
That is how to describe a model too large to materialise (for sharded
initialisation, or to restore a checkpoint into). Arguments are not changed.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import jax
import numpy as np
from typing_extensions import ParamSpec

from nnx.graph import merge, split
from nnx.state import State
import nnx.jaxapi as jx
from nnx.jaxapi import tree_flatten, tree_unflatten
from nnx.modes import tree_for
from nnx.transforms.lift import Frame, is_graph_node

P = ParamSpec("P")
R = TypeVar("R")


class _Structure:
    """The static part of an abstract result, carried out of ``jax.eval_shape``."""

    __slots__ = ("treedef", "positions", "graphdef", "host")

    def __init__(self, treedef: Any, positions: tuple[int, ...], graphdef: Any, host: dict[int, Any]) -> None:
        self.treedef = treedef
        self.positions = positions
        self.graphdef = graphdef
        self.host = host  # state leaf index -> the ShapeDtypeStruct of a NumPy leaf


jax.tree_util.register_pytree_node(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    _Structure, lambda s: ((), s), lambda s, _: s
)


def eval_shape(fun: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fun(*args, **kwargs)`` traced abstractly: modules in the result hold
    ``jax.ShapeDtypeStruct`` values; the arguments' modules are left unchanged.
    As in Flax, ``graph=`` and ``graph_updates=`` are this function's own keywords
    (not passed to ``fun``): ``graph=False`` is tree mode (``nnx.modes``), whose
    arguments may share nothing."""
    graph: Any = kwargs.pop("graph", None)
    graph_updates: Any = kwargs.pop("graph_updates", None)
    frame, dyn = Frame.of(args, kwargs, tree=tree_for("nnx.eval_shape", graph, graph_updates))
    framedef = frame.framedef

    def pure(values: list[Any], dyn: list[Any]) -> Any:
        a, k, _ = framedef.enter(values, dyn)
        out = fun(*a, **k)
        leaves, treedef = tree_flatten(out, is_leaf=is_graph_node)
        positions = tuple(i for i, leaf in enumerate(leaves) if is_graph_node(leaf))
        nodes = tuple(leaves[i] for i in positions)
        rest = [None if is_graph_node(leaf) else leaf for leaf in leaves]
        graphdef, state = split(nodes, graph=True) if nodes else (None, None)
        host = {} if state is None else _host_specs(state)
        return _Structure(treedef, positions, graphdef, host), state, rest

    structure, state, rest = jx.eval_shape(pure, frame.values(), dyn)
    if structure.host:
        values = list(state.leaves)
        for i, spec in structure.host.items():
            values[i] = spec
        state = State._make(state._layout, values)
    if structure.graphdef is not None:
        for node, i in zip(merge(structure.graphdef, state), structure.positions):
            rest[i] = node
    return tree_unflatten(structure.treedef, rest)  # type: ignore[no-any-return]


def _host_specs(state: State[Any]) -> dict[int, Any]:
    """The exact shape and dtype of each NumPy leaf: ``jax.eval_shape`` would narrow a
    64-bit one (with ``jax_enable_x64`` off), and an abstract model must describe the
    model it stands for exactly (a checkpoint restored into it is checked against it)."""
    host: list[tuple[int, np.ndarray[Any, Any]]] = [(i, v) for i, v in enumerate(state.leaves) if isinstance(v, np.ndarray)]
    return {i: jx.shape_dtype(v.shape, v.dtype) for i, v in host}
