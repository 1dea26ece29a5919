"""Declared fields: descriptors that make a module's state visible to checkers.

``w: jax.Array = nnx.param()`` declares that ``w`` is a node of kind ``Param``:

* reading ``self.w`` gives the value (a ``jax.Array`` to the type checker too),
  through the cell's ``get_value``;
* assigning a value writes into the existing cell, so every module sharing
  that cell sees the write; the first assignment creates the cell;
* assigning a ``Variable`` adopts that cell (this is how two modules share a
  field deliberately: ``b.w = nnx.cell(a, "w")``).

``nnx.static()`` declares a static field: its value lives in the GraphDef.
The cell itself is stored in the instance ``__dict__`` under the field name,
so the graph walk sees declared and undeclared attributes the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from nnx import epoch
from nnx.markers import Marked
from nnx.refs import check_store
from nnx.variables import (
    BatchStat,
    Param,
    Variable,
    Boxed,
    check_value,
    kinds_of_collection,
    unknown_collection_error,
)

T = TypeVar("T")
C = TypeVar("C")

_NO_DEFAULT: Any = object()  # a field declared without ``default=``

if TYPE_CHECKING:

    class Declared(Generic[T, C]):
        """How generated stubs (``nnx.stubgen``) spell a declared field, for checkers only:
        the value type ``T`` on instances, the cell kind ``C`` on the class
        (``Linear.w`` is ``Param[Array]``); assigning a value or a cell checks."""

        @overload
        def __get__(self, instance: None, owner: Any) -> C: ...
        @overload
        def __get__(self, instance: object, owner: Any) -> T: ...
        def __get__(self, instance: object, owner: Any) -> Any: ...
        def __set__(self, instance: object, value: T | C) -> None: ...


class Field:
    """Base of declared-field descriptors; knows its owner class and name."""

    name: str = "?"
    owner: type[Any] | None = None
    default: Any = _NO_DEFAULT  # what a read gives before any assignment (none: an error)

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.owner = owner
        self.name = name

    def _where(self, instance: object) -> str:
        return f"{type(instance).__name__}.{self.name}"

    def __delete__(self, instance: object) -> None:
        if instance.__dict__.pop(self.name, _MISSING) is _MISSING:
            raise self._unset(instance)
        epoch.bump(instance)

    def _stored(self, instance: object) -> Any:
        """The value assigned on ``instance``; else the field's ``default``; else the
        "never assigned" error. (For fields that store the value itself in ``__dict__``.)"""
        try:
            return instance.__dict__[self.name]
        except KeyError:
            if self.default is not _NO_DEFAULT:
                return self.default
            raise self._unset(instance) from None

    def _unset(self, instance: object) -> AttributeError:
        return AttributeError(
            f"{self._where(instance)} is declared but was never assigned; assign it in "
            f"__init__ (e.g. `self.{self.name} = ...`)."
        )


class VariableField(Field, Generic[T]):
    """A node field holding a cell of one Variable kind.

    With ``default=``, the field is optional: reading it before any assignment
    gives the default (and the module has no cell there). Without one, a field
    of a kind that holds model state must be assigned by ``__init__``
    (``required``); the metaclass checks it when construction finishes.
    """

    def __init__(self, kind: type[Variable[Any]], metadata: dict[str, Any], default: Any = _NO_DEFAULT) -> None:
        self.kind = kind
        self.metadata = metadata
        self.default = default

    @property
    def required(self) -> bool:
        """Whether construction must assign this field (a state kind, no default)."""
        return self.default is _NO_DEFAULT and not self.kind.created_lazily

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        try:
            cell = instance.__dict__[self.name]
        except KeyError:
            if self.default is not _NO_DEFAULT:
                return self.default
            raise self._unset(instance) from None
        return cell.get_value()  # a kind that overrides get_value is read through it

    def __set__(self, instance: object, value: Any) -> None:
        slots = instance.__dict__
        if isinstance(value, Variable):
            if not isinstance(value, self.kind):
                raise TypeError(
                    f"{self._where(instance)} is declared as {self.kind.__name__} but was "
                    f"assigned a {type(value).__name__} cell; assign a plain value (it is "  # pyright: ignore[reportUnknownArgumentType]
                    f"stored in a {self.kind.__name__}) or a {self.kind.__name__} cell."
                )
            if slots.get(self.name) is not value:
                check_store(getattr(instance, "_nnx_trace", None), value, lambda: self._where(instance))
                slots[self.name] = value
                epoch.bump(instance)
            return
        check_value(value.value if isinstance(value, Boxed) else value, lambda: self._where(instance))
        cell = slots.get(self.name)
        if cell is None:
            check_store(getattr(instance, "_nnx_trace", None), value, lambda: self._where(instance))
            slots[self.name] = self.kind(value, **self.metadata)
            epoch.bump(instance)
        else:  # the cell refuses a write from a foreign trace itself
            if isinstance(value, Boxed):  # a re-initialisation that names its axes
                cell.set_metadata(**value.metadata)
                value = value.value
            cell.value = value

    def __repr__(self) -> str:
        return f"VariableField({self.kind.__name__}, name={self.name!r})"


class StaticField(Field):
    """A static field: a plain Python value that is part of the GraphDef
    (with ``default=``, read as the default until assigned)."""

    def __init__(self, default: Any = _NO_DEFAULT) -> None:
        self.default = default

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        return self._stored(instance)

    def __set__(self, instance: object, value: Any) -> None:
        found = _state_inside(value)
        if found is not None:
            inside = "" if found is value else f" holding a {type(found).__name__}"
            raise TypeError(
                f"{self._where(instance)} is declared nnx.static() but was assigned "
                f"{type(value).__name__}{inside}; static fields hold plain Python values that "
                "are part of the GraphDef, where an array would be a constant that transforms "
                "never update. Declare it with nnx.param() / nnx.variable(Kind) instead, or "
                "make it an undeclared attribute (a list or tuple of arrays there is state)."
            )
        instance.__dict__[self.name] = value
        epoch.bump(instance)

    def __repr__(self) -> str:
        return f"StaticField(name={self.name!r})"


_MISSING = object()


def _state_inside(value: Any) -> object:
    """The first array, cell or graph object in ``value`` or its lists, tuples, sets
    and dicts (what a static field must not hold), or None."""
    import jax
    import numpy as np

    todo: list[Any] = [value]
    while todo:
        item: object = todo.pop()
        if isinstance(item, (Variable, jax.Array, np.ndarray)) or hasattr(item, "__jax_array__"):
            return item  # pyright: ignore[reportUnknownVariableType]  # narrowed to Variable[Unknown]
        if hasattr(type(item), "_nnx_trace"):  # a Module or another graph object
            return item
        if isinstance(item, (list, tuple, set, frozenset)):
            todo.extend(item)  # pyright: ignore[reportUnknownArgumentType]
        elif isinstance(item, dict):
            todo.extend(item.values())  # pyright: ignore[reportUnknownArgumentType]
    return None


def variable(kind: type[Variable[Any]], *, default: Any = _NO_DEFAULT, **metadata: Any) -> Any:
    """Declare a node field whose cell has kind ``kind`` (``count: jax.Array = nnx.variable(Count)``).

    ``__init__`` must assign it unless it has a ``default=`` (read until the
    first assignment) or its kind is created lazily (``Intermediate``, ``Cache``).
    """
    if not (isinstance(kind, type) and issubclass(kind, Variable)):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
        raise TypeError(f"nnx.variable() takes a Variable subclass, got {kind!r}.")
    field: VariableField[Any] = VariableField(kind, metadata, default)
    return field


def param(*, default: Any = _NO_DEFAULT, **metadata: Any) -> Any:
    """Declare a trainable parameter field: ``w: jax.Array = nnx.param()``;
    ``b: jax.Array | None = nnx.param(default=None)`` for an optional one."""
    field: VariableField[Any] = VariableField(Param, metadata, default)
    return field


def batch_stat(*, default: Any = _NO_DEFAULT, **metadata: Any) -> Any:
    """Declare a running-statistic field: ``mean: jax.Array = nnx.batch_stat()``."""
    field: VariableField[Any] = VariableField(BatchStat, metadata, default)
    return field


def ref(collection: str, *, default: Any = _NO_DEFAULT, **metadata: Any) -> Any:
    """Declare a node field by collection name (seed 000): ``w = nnx.ref("params")``."""
    kinds = kinds_of_collection(collection)
    if not kinds:
        raise unknown_collection_error(collection, "nnx.ref()")
    field: VariableField[Any] = VariableField(kinds[0], metadata, default)
    return field


@overload
def static(value: T, /) -> T: ...
@overload
def static(*, default: Any = ...) -> Any: ...
def static(value: Any = _NO_DEFAULT, /, *, default: Any = _NO_DEFAULT) -> Any:
    """Declare a static field: ``din: int = nnx.static()``; it lives in the GraphDef.

    ``nnx.static(value)`` marks one assignment instead (Flax 0.12's spelling):
    ``self.table = nnx.static(table)`` stores ``table`` as a static attribute and
    refuses a value holding arrays, cells or modules (see ``nnx.data``).
    """
    if value is _NO_DEFAULT:
        return StaticField(default)
    if default is not _NO_DEFAULT:
        raise TypeError("nnx.static() takes a value to mark or default= to declare a field, not both.")
    return Marked(value, is_data=False)


def cell(obj: object, name: str) -> Any:
    """The cell behind attribute ``name`` of ``obj`` (a declared field or a Variable attribute).

    Use it to share state deliberately: ``b.w = nnx.cell(a, "w")``. The result is
    typed ``Any`` for that assignment: ``b.w`` is declared as the value type
    (``jax.Array``), and assigning a cell to it (which adopts the cell) must check.
    """
    value = obj.__dict__.get(name, _MISSING)
    if not isinstance(value, Variable):
        fields = [n for n, v in vars(obj).items() if isinstance(v, Variable)]
        raise AttributeError(
            f"{type(obj).__name__}.{name} holds no cell (got {type(value).__name__ if value is not _MISSING else 'nothing'}); "
            f"attributes with cells: {sorted(fields)}"
        )
    return value  # pyright: ignore[reportUnknownVariableType]  # Any narrowed to Variable[Unknown]
