"""Filters: which leaves of a module's state to select.

A filter is any of:

* a Variable type (``nnx.Param``) -- matches cells of that kind or a subkind;
* a collection string (``"params"``) -- matches kinds declaring that collection;
* ``...`` (or ``True``) -- matches everything; ``False`` (or ``None``) matches nothing;
* a predicate ``(path, value) -> bool`` -- ``value`` is the cell, or the array;
* a tuple of filters -- matches what any of them matches;
* ``nnx.Not(f)``, ``nnx.All(*fs)``, ``nnx.Any(*fs)``, ``nnx.PathContains(key)``,
  ``nnx.buffers`` (plain array attributes that are not cells).

Most filters only look at the path and the kind of a leaf; those are
*structural*, and their answers are cached per State layout.
"""

from __future__ import annotations

import builtins
import inspect
from types import EllipsisType
import typing as tp
from typing import TYPE_CHECKING, Callable, Union

from nnx.variables import Variable, kind_in_collection, kinds_of_collection, unknown_collection_error

Key = str | int
Path = tuple[Key, ...]
#: The kind recorded for a leaf: its Variable type, or None for a plain array.
LeafKind = type[Variable[tp.Any]] | None

if TYPE_CHECKING:
    Filter = Union[
        type[tp.Any], str, EllipsisType, bool, None, Callable[[Path, tp.Any], bool], "FilterBase", tuple["Filter", ...]
    ]
else:
    Filter = tp.Any


class FilterBase:
    """A compiled filter: ``matches(path, kind, value)``; ``structural`` ones ignore ``value``."""

    structural: bool = True

    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        raise NotImplementedError

    def __call__(self, path: Path, value: tp.Any) -> bool:
        # pyright narrows the Any ``value`` to Variable[Unknown].
        kind: LeafKind = type(value) if isinstance(value, Variable) else None  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
        return self.matches(path, kind, value)

    # Filters compare by what they select, so equal filters built on every call
    # (``nnx.Not(nnx.Param)`` in a training loop) share one cache entry.
    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


class OfType(FilterBase):
    """Matches leaves whose cell (or array) is an instance of ``type_``."""

    def __init__(self, type_: type[tp.Any]) -> None:
        self.type = type_
        self.structural = issubclass(type_, Variable)

    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        if self.structural:
            return kind is not None and issubclass(kind, self.type)
        return isinstance(value, self.type)

    def __repr__(self) -> str:
        return self.type.__name__


class Collection(FilterBase):
    """Matches cells whose kind (or a base kind) declares collection ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        return kind is not None and kind_in_collection(kind, self.name)

    def __repr__(self) -> str:
        return repr(self.name)


class Everything(FilterBase):
    """Matches every leaf (``...``)."""

    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        return True

    def __repr__(self) -> str:
        return "..."


class Nothing(FilterBase):
    """Matches no leaf (``False``)."""

    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        return False

    def __repr__(self) -> str:
        return "False"


class Predicate(FilterBase):
    """Wraps a user predicate ``(path, value) -> bool``; never cached."""

    structural = False

    def __init__(self, fn: Callable[[Path, tp.Any], bool]) -> None:
        self.fn = fn

    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        return bool(self.fn(path, value))

    def __repr__(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))


class Not(FilterBase):
    """Matches what ``filter`` does not."""

    def __init__(self, filter: Filter) -> None:
        self.inner = to_filter(filter)
        self.structural = self.inner.structural

    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        return not self.inner.matches(path, kind, value)

    def __repr__(self) -> str:
        return f"Not({self.inner!r})"


class _Combination(FilterBase):
    """Shared shape of ``All`` and ``Any``: a tuple of compiled parts."""

    def __init__(self, *filters: Filter) -> None:
        self.parts = tuple(to_filter(f) for f in filters)
        self.structural = builtins.all(p.structural for p in self.parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.parts))})"


class All(_Combination):
    """Matches what every one of ``filters`` matches."""

    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        return builtins.all(p.matches(path, kind, value) for p in self.parts)


class Any(_Combination):  # noqa: A001 - the public name mirrors All/Not
    """Matches what at least one of ``filters`` matches (a tuple means the same)."""

    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        return builtins.any(p.matches(path, kind, value) for p in self.parts)


class PathContains(FilterBase):
    """Matches leaves whose path contains ``key`` (``nnx.PathContains("encoder")``).

    ``exact=False`` matches where ``str(key)`` is part of a path key
    (``PathContains("enc", exact=False)`` matches ``encoder``).
    """

    def __init__(self, key: Key, *, exact: bool = True) -> None:
        self.key = key
        self.exact = exact

    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        if self.exact:
            return self.key in path
        return any(str(self.key) in str(part) for part in path)

    def __repr__(self) -> str:
        return f"PathContains({self.key!r})" if self.exact else f"PathContains({self.key!r}, exact=False)"


class _Buffers(FilterBase):
    def matches(self, path: Path, kind: LeafKind, value: tp.Any) -> bool:
        return kind is None

    def __repr__(self) -> str:
        return "nnx.buffers"


#: Matches plain array attributes (NumPy or JAX arrays that are not in a cell).
buffers: FilterBase = _Buffers()


def to_filter(filter: Filter) -> FilterBase:
    """Compile any accepted filter spelling to a ``FilterBase``; reject anything else."""
    if isinstance(filter, FilterBase):
        return filter
    if filter is ... or filter is True:
        return Everything()
    if filter is False or filter is None:  # None: Flax's spelling of "nothing"
        return Nothing()
    if isinstance(filter, str):
        if not kinds_of_collection(filter):
            raise unknown_collection_error(filter, "filter")
        return Collection(filter)
    if isinstance(filter, type):
        return OfType(filter)
    if isinstance(filter, tuple):
        return Any(*filter)  # pyright: ignore[reportUnknownArgumentType]  # a callable narrowed to tuple[Unknown, ...]
    graph_object = hasattr(type(filter), "_nnx_trace")  # a Module, Rngs, Optimizer ...
    if callable(filter) and not graph_object and _takes_two(filter):
        return Predicate(filter)
    shown = f"a {type(filter).__name__} instance" if graph_object else repr(filter)
    hint = (
        " A module is not a filter: to select its state pass it as the first argument "
        "(nnx.state(module, nnx.Param)), or filter by path with nnx.PathContains('name')."
        if graph_object
        else " A predicate must accept two arguments (path, value)."
        if callable(filter)
        else " For several filters use a tuple, not a list."
        if isinstance(filter, list)  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
        else ""
    )
    raise TypeError(
        f"{shown} ({type(filter).__name__}) is not a filter. Use a Variable type "
        "(nnx.Param), a collection string ('params'), ..., a predicate "
        "(path, value) -> bool, a tuple of filters, or nnx.Not/All/Any/PathContains/buffers."
        + hint
    )


def _takes_two(fn: Callable[..., tp.Any]) -> bool:
    """Whether ``fn`` can be called as ``fn(path, value)`` (when its signature can be read)."""
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): trust the caller
        return True
    return True


def describe(filters: tuple[Filter, ...]) -> str:
    """A readable spelling of a filter tuple for error messages."""
    return ", ".join(repr(to_filter(f)) for f in filters)
