"""Flax's module name for the State functions (``nnx.statelib.diff``), and ``diff``.

``diff(state, other)`` is the part of ``state`` whose paths ``other`` lacks:
after growing a model, ``diff(nnx.state(new), nnx.state(old))`` is the new state.
"""

from __future__ import annotations

from typing import Any, TypeVar

from nnx.state import State

M = TypeVar("M")

__all__ = ["State", "diff"]


def diff(state: State[M], other: State[Any]) -> State[M]:
    """The leaves of ``state`` at paths that ``other`` does not have (kinds and metadata kept)."""
    theirs = set(other.paths)
    flat = {path: leaf for path, leaf in state.flat_state().items() if path not in theirs}
    rest: State[M] = State.from_flat_state(flat)
    return rest
