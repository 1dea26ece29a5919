"""``GraphState``: a State that carries the GraphDef it belongs to.

``nnx.split`` hands back the GraphDef and the States separately, and
``nnx.merge`` needs both again. ``nnx.unpack`` returns the same States with
the GraphDef attached instead, so that one value (or one value per filter)
travels through a function and ``nnx.merge(params, rest)`` rebuilds the module
without a separate GraphDef argument.

A GraphState *is* a State: paths, attribute access, filtering, ``nnx.update``,
optimizers and JAX transforms treat it like any other. As a pytree its leaves
and key paths are exactly the State's (the GraphDef is static data), so
``jax.tree.map`` over one gives a GraphState with the same GraphDef back.
"""

from __future__ import annotations

from typing import Any, Generic, Sequence

import jax
from typing_extensions import TypeVar as DefaultTypeVar

from nnx.graphdef import GraphDef
from nnx.state import Layout, State, path_str

#: The module class the GraphState rebuilds (as ``State``'s ``M``).
M = DefaultTypeVar("M", covariant=True, default=Any)


class GraphState(State[M], Generic[M]):
    """A State bundled with the GraphDef of the module it was taken from.

    Made by ``nnx.unpack``; ``nnx.merge(gs, *more)`` rebuilds the module. Reading
    ``gs.linear`` or ``gs['linear']`` gives a plain sub-State, as for any State.
    The GraphDef is ``gs._graphdef`` and the plain State ``gs._state`` (underscored,
    as in Flax, so that neither hides a state entry of that name).
    """

    __slots__ = ("_graphdef",)

    _graphdef: GraphDef[M]

    @classmethod
    def bundle(cls, graphdef: GraphDef[M], state: State[Any]) -> GraphState[M]:
        """``state``'s leaves (shared, not copied) with ``graphdef`` attached."""
        made: GraphState[M] = object.__new__(cls)
        object.__setattr__(made, "_layout", state._layout)
        object.__setattr__(made, "_leaves", state._leaves)
        object.__setattr__(made, "_offset", state._offset)
        object.__setattr__(made, "_graphdef", graphdef)
        return made

    @property
    def _state(self) -> State[M]:
        """The same leaves as a plain State (no copy)."""
        plain: State[M] = State._make(self._layout, self._leaves, self._offset)
        return plain

    def __repr__(self) -> str:
        return f"GraphState({self._graphdef.type.__name__}, {super().__repr__()})"


def _flatten_with_keys(gs: GraphState[Any]) -> tuple[list[tuple[Any, Any]], tuple[Layout, GraphDef[Any]]]:
    keys = [jax.tree_util.DictKey(path_str(p)) for p in gs._layout.paths]
    return list(zip(keys, gs.leaves)), (gs._layout, gs._graphdef)


def _flatten(gs: GraphState[Any]) -> tuple[list[Any], tuple[Layout, GraphDef[Any]]]:
    return gs.leaves, (gs._layout, gs._graphdef)


def _unflatten(aux: tuple[Layout, GraphDef[Any]], leaves: Any) -> GraphState[Any]:
    layout, graphdef = aux
    return GraphState.bundle(graphdef, State._make(layout, list(leaves)))


jax.tree_util.register_pytree_with_keys(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    GraphState, _flatten_with_keys, _unflatten, _flatten
)


def unbundle(first: GraphState[Any], rest: Sequence[object]) -> tuple[GraphDef[Any], list[State[Any]]]:
    """The GraphDef and plain States of ``merge(first, *rest)``; refuses a mix of
    GraphStates and other values, or GraphStates of different graphs."""
    states: list[State[Any]] = [first._state]
    for position, other in enumerate(rest, start=2):
        if not isinstance(other, GraphState):
            shown = type(other).__name__
            raise ValueError(
                f"nnx.merge: argument 1 is a GraphState (from nnx.unpack), so every argument must be "
                f"one; argument {position} is a {shown}. Expected GraphState objects only: unpack "
                "with all the filters at once (params, rest = nnx.unpack(model, nnx.Param, ...)), "
                "or use nnx.merge(graphdef, *states) with the result of nnx.split."
            )
        theirs: GraphState[Any] = other  # pyright: ignore[reportUnknownVariableType]  # narrowed from object
        if theirs._graphdef != first._graphdef:
            raise ValueError(
                f"nnx.merge: the GraphDef must be the same for every GraphState; argument 1 belongs "
                f"to a {first._graphdef.type.__name__} graph and argument {position} to another "
                f"({theirs._graphdef.type.__name__}). Merge the GraphStates one nnx.unpack call returned."
            )
        states.append(theirs._state)
    return first._graphdef, states
