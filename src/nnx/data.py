"""Data or static: how an attribute is marked (Flax 0.12's ``nnx.data``, ``nnx.Data``).

An ``nnx.Pytree`` splits its attributes into *data* (the pytree's children,
what ``jax.tree.leaves`` sees and JAX traces) and *static* (carried in the
tree structure, compared by value). Most attributes need no marking:
arrays, Variables, modules and other graph objects are data, everything else
is static (``is_data``). Where that guess is wrong, say so:

* on assignment: ``self.count = nnx.data(0)``, ``self.table = nnx.static(("a", "b"))``;
* on the class, for every instance: ``count: int = nnx.data()`` (with
  ``@nnx.dataclass``, also ``nnx.data(default=0)``), or the annotations
  ``count: nnx.Data[int]`` / ``names: nnx.Static[tuple[str, ...]]``.

``nnx.static`` itself lives in ``nnx.fields`` (it is also the static field of
a module); ``nnx.static(value)`` returns the same mark as here.

On an ``nnx.Module`` the marks change nothing: a module decides by value (see
``nnx.Object``), so ``nnx.data(0)`` stores a static ``0``. To make a Python
number module state, hold it in a cell: ``self.count = nnx.Variable(jnp.array(0))``.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, overload

from nnx.containers import Dict, List
from nnx.fields import _NO_DEFAULT, Field
from nnx.markers import Marked
from nnx.objects import Object, is_array
from nnx.variables import Variable

A = TypeVar("A")
T = TypeVar("T", bound=type[Any])

#: ``count: nnx.Data[int]``: the annotated attribute is data on every instance.
Data = Annotated[A, "nnx.data"]
#: ``names: nnx.Static[tuple[str, ...]]``: the annotated attribute is static on every instance.
Static = Annotated[A, "nnx.static"]

_REGISTERED: set[type[Any]] = set()


class DataField(Field):
    """A class-level ``nnx.data()`` declaration: the attribute is data on every instance.

    It stores the value in the instance ``__dict__`` like an undeclared
    attribute; with ``default=`` the value reads as the default until assigned.
    """

    def __init__(self, default: Any = _NO_DEFAULT) -> None:
        self.default = default

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Any:
        if instance is None:
            # What ``@dataclasses.dataclass`` reads as the field's default: the default, or
            # none at all (the declaration itself is found in the class ``__dict__``).
            if self.default is _NO_DEFAULT:
                raise AttributeError(self.name)
            return self.default
        return self._stored(instance)

    def __set__(self, instance: object, value: Any) -> None:
        # Pytree and Object.__setattr__ have already checked, adopted and bumped; a plain
        # object.__setattr__ (a frozen dataclass) lands here directly.
        instance.__dict__[self.name] = value

    def __repr__(self) -> str:
        return f"DataField(name={self.name!r})"


@overload
def data(value: A, /) -> A: ...
@overload
def data(*, default: Any = ...) -> Any: ...
def data(value: Any = _NO_DEFAULT, /, *, default: Any = _NO_DEFAULT) -> Any:
    """Mark a value as data: ``self.count = nnx.data(0)``; or, with no value, declare a
    data attribute on the class: ``count: int = nnx.data()`` (``default=`` optional).

    The result is typed as ``value`` for the assignment; it is a marker until
    assigned, so assign it directly (not inside a list or an expression).
    """
    if value is _NO_DEFAULT:
        return DataField(default)
    if default is not _NO_DEFAULT:
        raise TypeError("nnx.data() takes a value to mark or default= to declare a field, not both.")
    return Marked(value, is_data=True)


def register_data_type(kind: T, /) -> T:
    """Make instances of ``kind`` data wherever they are assigned to a Pytree attribute
    (``is_data`` is then true for them). Usable as a class decorator."""
    _REGISTERED.add(kind)
    return kind


def is_data(value: object, /) -> bool:
    """Whether a Pytree attribute holding ``value`` is data unless marked otherwise:
    arrays, Variables, graph objects (modules, ``Rngs``, Pytrees, ``nnx.List``/``nnx.Dict``)
    and instances of registered types. A list or dict of them is not (mark it, or use
    ``nnx.List``/``nnx.Dict``); a number, string or ``None`` is not."""
    return (
        isinstance(value, (Variable, Object, List, Dict))
        or is_array(value)
        or type(value) in _REGISTERED
    )
