"""Variable metadata in bulk: ``nnx.set_metadata`` and Flax's ``nnx.var_defaults``.

``nnx.set_metadata(model, sharding=..., only=nnx.Param)`` adds metadata to every
cell of a model that the filter selects, in one call, as ``v.set_metadata``
does for one cell.

``nnx.var_defaults`` is Flax 0.12's switch between its Variable
implementations (``hijax``: a Variable JAX can carry itself; ``ref``: a value
in a ``jax.Ref``). nnx has one implementation, a cell its own transforms carry,
so both switches are recorded and read back (``nnx.var_defaults().hijax``) for
code that sets them, and change nothing about the cells nnx makes.
"""

from __future__ import annotations

from contextvars import ContextVar
from types import TracebackType
from typing import Any, NamedTuple, overload

from nnx.filters import Filter, to_filter
from nnx.graph import iter_graph
from nnx.variables import Variable


class VarDefaults(NamedTuple):
    """The Flax Variable switches in effect (recorded only; see the module docstring)."""

    hijax: bool
    ref: bool


_DEFAULTS: ContextVar[VarDefaults] = ContextVar("nnx_var_defaults", default=VarDefaults(hijax=False, ref=False))


class VarDefaultsContext:
    """What ``var_defaults(hijax=..., ref=...)`` returns: the new switches are in effect
    at once; used as ``with``, the previous ones come back when the block ends."""

    __slots__ = ("_previous",)

    def __init__(self, previous: VarDefaults) -> None:
        self._previous = previous

    def __enter__(self) -> VarDefaults:
        return _DEFAULTS.get()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        _DEFAULTS.set(self._previous)


@overload
def var_defaults() -> VarDefaults: ...
@overload
def var_defaults(*, hijax: bool, ref: bool | None = None) -> VarDefaultsContext: ...
@overload
def var_defaults(*, hijax: bool | None = None, ref: bool) -> VarDefaultsContext: ...
def var_defaults(*, hijax: bool | None = None, ref: bool | None = None) -> VarDefaults | VarDefaultsContext:
    """Read (no arguments) or set Flax's Variable switches; see the module docstring."""
    now = _DEFAULTS.get()
    if hijax is None and ref is None:
        return now
    for name, value in (("hijax", hijax), ("ref", ref)):
        if value is not None and not isinstance(value, bool):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
            raise TypeError(f"nnx.var_defaults: {name}= takes True or False, got {value!r}.")
    _DEFAULTS.set(VarDefaults(hijax=now.hijax if hijax is None else hijax, ref=now.ref if ref is None else ref))
    return VarDefaultsContext(now)


def set_metadata(node: object, /, *, only: Filter = ..., **metadata: Any) -> None:
    """Add ``metadata`` to every cell of ``node`` that ``only`` selects (all by default).

    ``nnx.set_metadata(model, sharding_names=("embed",), only=nnx.Param)``. Each
    cell is reached once, however many modules share it.
    """
    if not metadata:
        raise TypeError("nnx.set_metadata needs metadata keywords, e.g. nnx.set_metadata(model, frozen=True).")
    selected = to_filter(only)
    cells: list[Variable[Any]] = [
        v for path, v in iter_graph(node) if isinstance(v, Variable) and selected(path, v)
    ]
    for cell in cells:
        cell.set_metadata(**metadata)
