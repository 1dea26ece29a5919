"""``nnx.map``: a copy of a module with every state leaf replaced by ``f(path, leaf)``.

``f`` sees each leaf as its cell (a fresh ``Param``, ``BatchStat`` ... holding
the value, so ``v.replace(...)``, ``v.value`` and ``jnp.zeros_like(v)`` work)
or, for a plain array attribute, the array. It returns the new value, or a
cell whose value is taken. The leaf keeps its kind and metadata, and its shape
may only gain or lose leading axes (as ``nnx.merge`` allows)::

    zeros = nnx.map(lambda path, v: jnp.zeros_like(v), model)

The original is untouched; the copy has new cells (sharing inside it is kept).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar, cast

from nnx.filters import Path
from nnx.graph import merge, split
from nnx.state import State
from nnx.variables import Variable

N = TypeVar("N")


def map(f: Callable[[Path, Any], Any], node: N, /, *, graph: bool | None = None) -> N:  # noqa: A001 - Flax's name
    """A copy of ``node`` whose state leaf at each path is ``f(path, leaf)``.
    ``graph`` is accepted for Flax's spelling and changes nothing."""
    if isinstance(node, Variable):
        cell: Variable[Any] = node  # pyright: ignore[reportUnknownVariableType]  # narrowed to Variable[Unknown]
        out = f((), cell.replace(cell._value))
        return cast(N, cell.replace(_value_of(out)))
    graphdef, state = split(node)
    flat = state.flat_state()
    values: list[Any] = []
    for path in state.paths:
        out = f(path, flat[path])
        values.append(_value_of(out))
    return merge(graphdef, State._make(state._layout, values))


def _value_of(out: object) -> Any:
    """What ``f`` returned, as a leaf value (a cell gives its value)."""
    return out._value if isinstance(out, Variable) else out
