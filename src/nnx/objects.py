"""``Object``: the base of every graph node (modules, ``Rngs``, optimizers).

An Object is a plain mutable Python object. Its attributes are split by
*value*, not by declaration: cells (``Variable``), other Objects, arrays, and
containers holding any of those are nodes; everything else is static and
ends up in the GraphDef. Declared fields (``nnx.param()``, ``nnx.static()``)
are recorded per class by the metaclass, ``ObjectMeta`` (``type(nnx.Module)``),
inheriting from base classes.

The runtime hooks (``__setattr__``/``__delattr__``, the metaclass ``__call__``)
are hidden from type checkers so that an assignment to a misspelt attribute is
still an error and a constructor's signature is exactly its ``__init__``'s.
"""

from __future__ import annotations

import inspect

from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Union

from typing_extensions import Self

import jax
import numpy as np
from typing_extensions import Self

from nnx import epoch
from nnx.containers import Dict, List, adopt
from nnx.fields import Field, StaticField, VariableField, _state_inside
from nnx.markers import Marked
from nnx.refs import INERT, check_store, current_trace
from nnx.variables import Boxed, Variable

if TYPE_CHECKING:  # checkers only: state sits above objects in the layering
    from nnx.state import Exact

Key = str | int


class ObjectMeta(type):
    """The metaclass of every nnx Object: ``type(nnx.Module)``.

    For each class it records the declared fields, base classes' included (a
    subclass that rebinds a name to something else drops that field):

    * ``__nnx_fields__``: name -> field descriptor, all of them;
    * ``__nnx_node_fields__`` / ``__nnx_static_fields__``: the names of the
      node fields (``nnx.param()``, ``nnx.batch_stat()``, ``nnx.variable(Kind)``)
      and of the static ones (``nnx.static()``);
    * ``__nnx_required__``: the node fields construction must assign, those of a
      kind that holds model state (``Param``, ``BatchStat``, your own kinds) with
      no ``default=``. Kinds created lazily while the model runs (``Intermediate``,
      ``Cache``) are not required.

    Its ``__call__`` (``Linear(2, 3, ...)``) does what ``__init_subclass__``
    cannot: once the *outermost* ``__init__`` has returned (a subclass calling
    ``super().__init__`` is still constructing), it checks that every required
    field was assigned, and raises naming the class, the field and the fix.
    """

    __nnx_fields__: dict[str, Field]
    __nnx_node_fields__: tuple[str, ...]
    __nnx_static_fields__: tuple[str, ...]
    __nnx_required__: tuple[str, ...]

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(name, bases, namespace, **kwargs)
        fields: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Field):
                    fields[attr] = value
                elif attr in fields:  # a subclass rebinds the name to something else
                    del fields[attr]
        cls.__nnx_fields__ = fields
        cls.__nnx_node_fields__ = tuple(n for n, f in fields.items() if isinstance(f, VariableField))
        cls.__nnx_static_fields__ = tuple(n for n, f in fields.items() if isinstance(f, StaticField))
        cls.__nnx_required__ = tuple(
            n for n, f in fields.items() if isinstance(f, VariableField) and f.required
        )

    if not TYPE_CHECKING:  # checkers see each class's own __init__ as its constructor

        @property
        def __signature__(cls):
            # What inspect.signature(cls) would give without the __call__ below:
            # the parameters of __init__, less self.
            init = inspect.signature(cls.__init__)
            return init.replace(parameters=list(init.parameters.values())[1:])

        def __call__(cls, *args, **kwargs):
            obj = _construct(cls, *args, **kwargs)
            required = cls.__nnx_required__
            if required:
                slots = obj.__dict__
                for name in required:
                    if name not in slots:
                        raise _unassigned(cls, name)
            return obj


_construct = type.__call__  # one lookup, not a super() object per construction


def _unassigned(cls: ObjectMeta, name: str) -> TypeError:
    field = cls.__nnx_fields__[name]
    assert isinstance(field, VariableField)
    kind = field.kind.__name__
    return TypeError(
        f"{cls.__name__}.{name} is declared as a {kind} field but {cls.__name__}.__init__ never "
        f"assigned it, so the model would have no {kind} there. Assign it in __init__ "
        f"(`self.{name} = ...`), declare it with a default when it is optional "
        f"(e.g. `nnx.param(default=None)`), or remove the declaration."
    )


if TYPE_CHECKING:
    # Checkers see a plain class: a custom metaclass makes pyright type an
    # instance's ``__dict__`` as the class's mapping proxy, and nothing about
    # constructors or attributes should depend on it.
    _WithMeta = object
else:

    class _WithMeta(metaclass=ObjectMeta):
        __slots__ = ()


class Object(_WithMeta):
    """Base class of graph nodes: plain mutable objects whose state can be split out."""

    __slots__ = ("__dict__", "__weakref__", "_nnx_cache", "_nnx_trace")
    if TYPE_CHECKING:  # recorded by the metaclass, ObjectMeta
        __nnx_fields__: ClassVar[dict[str, Field]]
        __nnx_node_fields__: ClassVar[tuple[str, ...]]
        __nnx_static_fields__: ClassVar[tuple[str, ...]]
        __nnx_required__: ClassVar[tuple[str, ...]]

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        obj = super().__new__(cls)
        object.__setattr__(obj, "_nnx_trace", current_trace())
        return obj

    if TYPE_CHECKING:

        @property
        def __nnx_self__(self) -> Exact[Self]:
            """The object's own type, for ``nnx.state.HasState`` (checkers only)."""
            ...

    else:

        def __setattr__(self, name: str, value: Any) -> None:
            if type(value) is Marked:
                value = _unmark(self, name, value)
            if _is_data_descriptor(type(self), name):
                object.__setattr__(self, name, value)  # fields decide about the epoch
                return
            if isinstance(value, Boxed):
                raise _boxed_error(self, name, value)
            value = adopt(value)
            if type(value) not in INERT:  # the hot path skips the call
                check_store(getattr(self, "_nnx_trace", None), value, lambda: f"{type(self).__name__}.{name}")
            slots = self.__dict__
            old = slots.get(name, _MISSING)
            if old is value:
                return
            slots[name] = value
            # An array replacing an array is a value change, not a structural one:
            # the graph reads plain array attributes through their slot.
            if not (is_array(old) and is_array(value)):
                epoch.bump(self)

        def __delattr__(self, name: str) -> None:
            object.__delattr__(self, name)
            epoch.bump(self)


_MISSING = object()


def _unmark(obj: Object, name: str, marked: Marked) -> Any:
    """The value ``nnx.data(x)`` / ``nnx.static(x)`` carries. An Object decides by value,
    so the mark changes nothing, except that a static mark on state is refused."""
    found = None if marked.is_data else _state_inside(marked.value)
    if found is not None:
        raise static_holds_data(obj, name, marked.value, found)
    return marked.value


def static_holds_data(obj: object, name: str, value: object, found: object) -> ValueError:
    """The error for ``obj.name = nnx.static(value)`` where ``value`` holds ``found``."""
    inside = "" if found is value else f" (it holds a {type_name(found)})"
    return ValueError(
        f"Found data in value of type '{type_name(value)}'{inside} marked nnx.static(...) for "
        f"attribute '{type(obj).__name__}.{name}': a static attribute is part of the structure, "
        "where an array, Variable or module would be a constant that transforms never update. "
        f"Drop the nnx.static(...) (or write nnx.data(...)) to keep it as data: `self.{name} = value`."
    )


def type_name(value: object) -> str:
    """``value``'s type for an error message (``jax.Array``, not JAX's private class)."""
    return "jax.Array" if isinstance(value, jax.Array) else type(value).__name__


def _boxed_error(obj: Object, name: str, value: Boxed) -> TypeError:
    """A bare ``Boxed`` value belongs inside a Variable."""
    return TypeError(
        f"{type(obj).__name__}.{name}: assigned a value carrying Variable metadata "
        f"({sorted(value.metadata)}, e.g. from nnx.with_partitioning) but no Variable; "
        f"wrap it in its kind, e.g. `self.{name} = nnx.Param(...)`, or declare the field "
        "with nnx.param()."
    )


def _is_data_descriptor(cls: type, name: str) -> bool:
    attr: object = getattr(cls, name, None)
    return attr is not None and hasattr(type(attr), "__set__")


def is_array(value: object) -> bool:
    """Whether ``value`` is a JAX or NumPy array, or the ``jax.ShapeDtypeStruct`` standing
    for one in an abstract model (these are state leaves, not static)."""
    return isinstance(value, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))


def is_node(value: Any) -> bool:
    """Whether ``value`` belongs in the State side of a split (directly or inside a tuple)."""
    if isinstance(value, (Variable, Object, List, Dict)) or is_array(value):
        return True
    # pyright narrows Any by ``type(...) is tuple`` to tuple[Unknown, ...].
    return type(value) is tuple and any(is_node(v) for v in value)  # pyright: ignore[reportUnknownVariableType]


#: The graph nodes that have children: Objects, containers and tuples.
Walkable = Union[Object, List[Any], Dict[Any, Any], tuple[Any, ...]]


def _key_order(key: Key) -> tuple[int, Any]:
    return (0, key) if isinstance(key, int) else (1, key)


def node_items(node: Walkable) -> list[tuple[Key, Any]]:
    """The children of a graph node in the deterministic order the graph walks them."""
    if isinstance(node, Object):
        return sorted(node.__dict__.items())
    if isinstance(node, Dict):
        return sorted(node.items(), key=lambda kv: _key_order(kv[0]))
    return list(enumerate(node))


def iter_submodules(root: Object) -> Iterator[tuple[tuple[Key, ...], Object]]:
    """Every Object reachable from ``root`` once, with its first path, pre-order."""
    seen: set[int] = set()

    def walk(path: tuple[Key, ...], node: Walkable) -> Iterator[tuple[tuple[Key, ...], Object]]:
        if isinstance(node, (Object, List, Dict)):
            if id(node) in seen:
                return
            seen.add(id(node))
        if isinstance(node, Object):
            yield path, node
        for key, child in node_items(node):
            if isinstance(child, (Object, List, Dict)) or (type(child) is tuple and is_node(child)):
                # ``child`` is Any, narrowed by pyright to List[Unknown] (...) here.
                yield from walk((*path, key), child)  # pyright: ignore[reportUnknownArgumentType]

    yield from walk((), root)
