"""``nnx.call``: call a method of a module held as a pure ``(GraphDef, State)`` pair.

Inside a plain JAX function (``jax.jit``, ``jax.lax.scan``) a module travels as
the pair ``nnx.split`` returns. ``nnx.call(pair).method(*args)`` merges it,
calls the method, splits the module again and returns ``(output, new_pair)``:
merge, call, split in one expression. Attribute and item access before the
call reach a submodule: ``nnx.call(pair)["b"].increment()``.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from nnx.graph import merge, split
from nnx.graphdef import GraphDef
from nnx.state import State

N = TypeVar("N")

#: A module as the pair ``nnx.split`` returns: ``nnx.PureState[Linear]``.
PureState = tuple[GraphDef[N], State[Any]]


class Caller(Generic[N]):
    """What ``nnx.call`` returns: reach a method by attribute / item access, then call it."""

    __slots__ = ("_pure", "_route")

    def __init__(self, pure: PureState[N], route: tuple[tuple[str, Any], ...] = ()) -> None:
        self._pure = pure
        self._route = route  # ("attr", name) / ("item", key) steps from the root

    def __getattr__(self, name: str) -> Caller[N]:
        if name.startswith("__"):
            raise AttributeError(name)
        return Caller(self._pure, (*self._route, ("attr", name)))

    def __getitem__(self, key: Any) -> Caller[N]:
        return Caller(self._pure, (*self._route, ("item", key)))

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[Any, PureState[N]]:
        graphdef, *states = self._pure
        root = merge(graphdef, *states)
        target: Any = root
        for how, key in self._route:
            target = getattr(target, key) if how == "attr" else target[key]
        out = target(*args, **kwargs)
        new_graphdef, new_state = split(root)
        return out, (new_graphdef, new_state)


def call(pure: PureState[N], /) -> Caller[N]:
    """Call a method of the module that ``pure`` (``nnx.split``'s pair) describes.

    ``y, pure = nnx.call(pure)(x)`` runs ``module(x)`` on the merged module and
    returns its output with the module split again (any state it changed, e.g.
    a counter or batch statistics, is in the new State). The caller's pair is
    not changed.
    """
    if not (isinstance(pure, tuple) and pure and isinstance(pure[0], GraphDef)):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
        raise TypeError(
            f"nnx.call takes the (GraphDef, State) pair nnx.split returned, got {type(pure).__name__}; "
            "e.g. pure = nnx.split(model); y, pure = nnx.call(pure)(x)."
        )
    return Caller(pure)
