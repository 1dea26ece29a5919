"""Flax 0.12's spellings for plain views of a ``State``: ``to_pure_dict``, ``replace_by_pure_dict``, ``to_flat_state``, ``as_pure``.

nnx's ``State`` leaves are already plain values, so these are views, not
unwrapping: ``to_pure_dict`` is ``State.to_dict`` (nested dicts of arrays,
e.g. to save with any serialiser) and ``to_flat_state`` lists
``(path, Variable)`` pairs like ``State.flat_state``.
"""

from __future__ import annotations

from typing import Any, Mapping, TypeVar

import jax

from nnx.filters import Key
from nnx.state import State, path_str
from nnx.variables import Variable

A = TypeVar("A")

Path = tuple[Key, ...]


def to_pure_dict(state: State[Any], /) -> dict[Key, Any]:
    """The values of ``state`` as nested plain dicts keyed like its paths (no kinds, no metadata)."""
    return state.to_dict()


class FlatState(list[tuple[Path, Any]]):
    """``(path, leaf)`` pairs in path order, with ``.paths`` and ``.leaves`` views."""

    @property
    def paths(self) -> list[Path]:
        """The paths, in order."""
        return [path for path, _ in self]

    @property
    def leaves(self) -> list[Any]:
        """The leaves, in path order."""
        return [leaf for _, leaf in self]


def as_pure(tree: A, /) -> A:
    """``tree`` with every Variable in it replaced by its value.

    A ``State`` already holds plain values, so its leaves come back as they
    are (in a new State of the same paths and kinds); a list or dict of cells
    becomes a list or dict of arrays.
    """
    pure: A = jax.tree.map(_value_of, tree, is_leaf=_is_cell)
    return pure


def _is_cell(x: object) -> bool:
    return isinstance(x, Variable)


def _value_of(x: Any) -> Any:
    if isinstance(x, Variable):
        cell: Variable[Any] = x  # pyright: ignore[reportUnknownVariableType]  # narrowed from Any
        return cell.get_value()
    return x


def to_flat_state(state: State[Any], /) -> FlatState:
    """``(path, leaf)`` pairs in path order; cell leaves come as a fresh ``Variable`` of their kind
    (a copy: write through ``State`` or ``nnx.update``, not into these)."""
    return FlatState(state.flat_state().items())


def replace_by_pure_dict(state: State[Any], pure_dict: Mapping[Key, Any], /) -> None:
    """Write the values of the nested dict ``pure_dict`` into ``state``, in place (kinds and metadata kept).

    ``pure_dict`` must hold exactly ``state``'s paths (what ``to_pure_dict``
    gave, possibly after a round trip through a file); a missing or extra path
    is an error naming it and changes nothing. Integer keys that became
    strings in the round trip (``"0"``) are accepted.
    """
    flat = _flatten(pure_dict)
    by_text = {tuple(str(k) for k in path): path for path in state.paths}
    given = {tuple(str(k) for k in path): value for path, value in flat.items()}
    missing = sorted(path_str(by_text[p]) for p in set(by_text) - set(given))
    extra = sorted("/".join(p) for p in set(given) - set(by_text))
    if missing or extra:
        raise ValueError(
            f"replace_by_pure_dict: the dict does not match the state; missing {missing}, not in the state {extra}. "
            "Pass the dict to_pure_dict made from a state of the same model."
        )
    for text, path in by_text.items():
        node: Any = state
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = given[text]


def _flatten(tree: Mapping[Key, Any], prefix: Path = ()) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, (*prefix, key)))  # pyright: ignore[reportUnknownArgumentType]
        else:
            out[(*prefix, key)] = value
    return out
