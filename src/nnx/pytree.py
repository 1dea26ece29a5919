"""``nnx.Pytree``: a plain Python object that *is* a JAX pytree (Flax 0.12's ``nnx.Pytree``).

.. code-block:: python

    class Env(nnx.Pytree):
        def __init__(self, n: int):
            self.position = jnp.zeros(n)      # an array: data (a pytree child)
            self.name = "walker"              # a string: static (in the tree structure)
            self.steps = nnx.data(0)          # marked: a Python number as data

    env = Env(3)
    jax.tree.leaves(env)                     # [Array([0., 0., 0.]), 0]
    env = jax.jit(lambda e: e)(env)          # any JAX function takes it and returns it

Where an ``nnx.Module`` is a graph node that the nnx functions and transforms
split into ``(GraphDef, State)`` and that JAX itself does not see into, a
Pytree is both: JAX flattens it like a tuple of its data attributes, and the
nnx functions treat it as the graph object it also is (``nnx.split``,
``nnx.state``, ``nnx.jit``/``nnx.vmap``/``nnx.scan``, which update its
Variables in place and keep shared ones shared).

The nnx functions see the graph as they see any module's: by value. So a
Python number marked ``nnx.data`` is a pytree child for JAX but static for
``nnx.split`` and the nnx transforms (hold it in a cell, ``nnx.Variable``, to
make it state there too), and a NamedTuple or dataclass of Variables is
static to them (use ``nnx.List`` / ``nnx.Dict`` or another Pytree).

Each attribute is data or static, decided at its first assignment and kept
afterwards (``nnx.data`` says how it is decided and how to mark it). A static
attribute may not hold data, since JAX would carry it as a compile-time
constant; the assignment raises with the ways out. ``class Env(nnx.Pytree,
pytree=False)`` makes a class that is only a graph object (no checks, not
registered with JAX); its subclasses inherit the choice.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, get_origin

import jax

from nnx import epoch
from nnx.containers import Dict, List, adopt
from nnx.data import DataField, is_data
from nnx.fields import Field, StaticField, VariableField
from nnx.graphdef import Static
from nnx.markers import MARKS, Marked
from nnx.module import render
from nnx.objects import Object, ObjectMeta, static_holds_data, type_name



class Marks:
    """Which attributes of one Pytree are data and which static: immutable and
    hashable (it rides in GraphDefs and in JAX tree structures)."""

    __slots__ = ("data", "static", "_hash")

    def __init__(self, data: frozenset[str] = frozenset(), static: frozenset[str] = frozenset()) -> None:
        self.data = data
        self.static = static
        self._hash = hash((data, static))

    def get(self, name: str) -> bool | None:
        """True for data, False for static, None when ``name`` was never recorded."""
        return True if name in self.data else False if name in self.static else None

    def with_status(self, name: str, data: bool) -> Marks:
        """A copy recording ``name`` as data (or static)."""
        if data:
            return Marks(self.data | {name}, self.static - {name})
        return Marks(self.data - {name}, self.static | {name})

    def without(self, name: str) -> Marks:
        """A copy that no longer records ``name``."""
        return Marks(self.data - {name}, self.static - {name})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Marks) and self.data == other.data and self.static == other.static

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Marks(data={sorted(self.data)}, static={sorted(self.static)})"


_NO_MARKS = Marks()


class PytreeMeta(ObjectMeta):
    """``type(nnx.Pytree)``: after construction, gives every attribute assigned around
    ``__setattr__`` (a frozen dataclass's ``__init__``) its status, and checks it."""

    if not TYPE_CHECKING:

        def __call__(cls, *args, **kwargs):
            obj = super().__call__(*args, **kwargs)
            if cls.__nnx_pytree__:
                _settle(obj)
            return obj


if TYPE_CHECKING:  # checkers see a plain class, as for Object (see nnx.objects)
    _Base = Object
else:

    class _Base(Object, metaclass=PytreeMeta):
        __slots__ = ()


class Pytree(_Base):
    """Base class of objects that are JAX pytrees and nnx graph objects at once."""

    #: Whether the class is registered with JAX (``class C(nnx.Pytree, pytree=False)``: not).
    __nnx_pytree__: ClassVar[bool] = True
    #: Attribute name -> data (True) or static, as declared on the class and its bases.
    __nnx_declared__: ClassVar[dict[str, bool]] = {}

    def __init_subclass__(cls, *, pytree: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if pytree is not None:
            cls.__nnx_pytree__ = pytree
        cls.__nnx_declared__ = _declarations(cls)
        if cls.__nnx_pytree__:
            _register(cls)

    if not TYPE_CHECKING:  # checkers keep reporting misspelt attributes

        def __setattr__(self, name: str, value: Any) -> None:
            cls = type(self)
            if not cls.__nnx_pytree__ or _is_slot(cls, name):
                Object.__setattr__(self, name, value)  # unwraps a mark, decides by value
                return
            marks: Marks = self.__dict__.get(MARKS, _NO_MARKS)
            how = "marked"
            if type(value) is Marked:
                data, value = value.is_data, value.value
            else:
                data, how = _status(cls, marks, name, value)
            _check(self, name, value, data, how)
            Object.__setattr__(self, name, value)
            if marks.get(name) is not data:
                self.__dict__[MARKS] = marks.with_status(name, data)
                epoch.bump(self)

        def __delattr__(self, name: str) -> None:
            Object.__delattr__(self, name)
            marks: Marks | None = self.__dict__.get(MARKS)
            if marks is not None and marks.get(name) is not None:
                self.__dict__[MARKS] = marks.without(name)

    def __repr__(self) -> str:
        return render(self)


def _is_slot(cls: type, name: str) -> bool:
    """Whether ``name`` is stored by a descriptor of its own (a ``__slots__`` entry, a
    property), not in the instance ``__dict__``; declared fields store there."""
    attr: object = getattr(cls, name, None)
    return attr is not None and hasattr(type(attr), "__set__") and not isinstance(attr, Field)


def _status(cls: type[Pytree], marks: Marks, name: str, value: Any) -> tuple[bool, str]:
    """Whether an unmarked assignment of ``value`` to ``name`` is data, and why: the
    attribute's recorded status, else the class's declaration, else the value's kind."""
    recorded = marks.get(name)
    if recorded is not None:
        return recorded, "recorded"
    declared = cls.__nnx_declared__.get(name)
    if declared is not None:
        return declared, "declared"
    return is_data(value), "value"


def _check(obj: Pytree, name: str, value: Any, data: bool, how: str) -> None:
    """Refuse a mark nested inside the value, and data inside a static attribute."""
    leaves = jax.tree_util.tree_leaves(value, is_leaf=lambda x: type(x) is Marked or is_data(x))
    for leaf in leaves:
        if type(leaf) is Marked:
            raise ValueError(
                f"{type(obj).__name__}.{name}: found {leaf.spelling} inside a value of type "
                f"'{type(value).__name__}'; a mark applies to a whole attribute, so assign it "
                f"directly: `self.{name} = {leaf.spelling[:-5]}(value)`."
            )
    if data:
        return
    found = next((leaf for leaf in leaves if is_data(leaf)), None)
    if found is None:
        return
    if how == "marked":
        raise static_holds_data(obj, name, value, found)
    raise _data_in_static(obj, name, value, found, declared=how == "declared")


def _data_in_static(obj: Pytree, name: str, value: Any, found: Any, *, declared: bool) -> ValueError:
    cls = type(obj).__name__
    kind = type_name(value)
    holds = "" if found is value else f", which holds a {type_name(found)},"
    if declared:
        head = (
            f"Found unexpected data on value of type '{kind}'{holds} in static attribute "
            f"'{cls}.{name}' (declared static on the class)."
        )
    else:
        head = (
            f"Found data on value of type '{kind}'{holds} assigned to static attribute "
            f"'{cls}.{name}' of Pytree type '{cls}'."
        )
    return ValueError(
        f"{head} JAX would carry it as a constant of the tree structure, never traced or "
        "updated. Either\n"
        f"  - mark the attribute data: `self.{name} = nnx.data(value)`, or declare it on the "
        f"class: `{name}: {kind} = nnx.data()`;\n"
        f"  - for a list or dict of arrays, Variables or modules, use nnx.List(...) / nnx.Dict(...), "
        "which are data by themselves;\n"
        "  - remove the arrays, Variables or modules from the value if it is meant to be static;\n"
        f"  - or make the class a graph object only: `class {cls}(nnx.Pytree, pytree=False)`."
    )


def _settle(obj: Pytree) -> None:
    """Record a status for every attribute that has none (assigned around ``__setattr__``)."""
    slots = obj.__dict__
    marks: Marks = slots.get(MARKS, _NO_MARKS)
    cls = type(obj)
    for name, value in list(slots.items()):
        if name == MARKS or marks.get(name) is not None:
            continue
        data, how = _status(cls, marks, name, value)
        _check(obj, name, value, data, how)
        slots[name] = adopt(value)
        marks = marks.with_status(name, data)
    if slots.get(MARKS, _NO_MARKS) is not marks:
        slots[MARKS] = marks


# -- class declarations ---------------------------------------------------------

_ANNOTATION_MARK = re.compile(r"^(?:nnx\.)?(Data|Static)\[")


def _declarations(cls: type) -> dict[str, bool]:
    """Attribute -> data, from ``nnx.Data[...]``/``nnx.Static[...]`` annotations and
    ``nnx.data()``/``nnx.static()``/cell fields of ``cls`` and its bases."""
    declared: dict[str, bool] = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in _annotations(klass).items():
            mark = _annotation_mark(annotation)
            if mark is not None:
                declared[name] = mark
        for name, value in vars(klass).items():
            if isinstance(value, (DataField, VariableField)):
                declared[name] = True
            elif isinstance(value, StaticField):
                declared[name] = False
    return declared


def _annotations(klass: type) -> dict[str, Any]:
    try:
        return inspect.get_annotations(klass)
    except Exception:  # an annotation that cannot be evaluated declares nothing we read
        return {}


def _annotation_mark(annotation: Any) -> bool | None:
    """True for ``nnx.Data[T]``, False for ``nnx.Static[T]``, None otherwise (strings
    are read as written, for modules with ``from __future__ import annotations``)."""
    if isinstance(annotation, str):
        match = _ANNOTATION_MARK.match(annotation)
        return None if match is None else match.group(1) == "Data"
    if get_origin(annotation) is Annotated:
        metadata: tuple[Any, ...] = annotation.__metadata__
        if "nnx.data" in metadata:
            return True
        if "nnx.static" in metadata:
            return False
    return None


# -- the JAX side ------------------------------------------------------------------


def _items(p: Pytree) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]], Marks]:
    """``p``'s data and static attributes, sorted by name, and its marks."""
    slots = p.__dict__
    marks: Marks = slots.get(MARKS, _NO_MARKS)
    cls = type(p)
    data: list[tuple[str, Any]] = []
    static: list[tuple[str, Any]] = []
    for name in sorted(slots):
        if name == MARKS:
            continue
        value = slots[name]
        (data if _status(cls, marks, name, value)[0] else static).append((name, value))
    return data, static, marks


def _flatten_with_keys(p: Pytree) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
    data, static, marks = _items(p)
    children = [(jax.tree_util.GetAttrKey(name), _plain(value)) for name, value in data]
    return children, (tuple(name for name, _ in data), Static(tuple(static)), marks)


def _flatten(p: Pytree) -> tuple[list[Any], tuple[Any, ...]]:
    data, static, marks = _items(p)
    return [_plain(value) for _, value in data], (tuple(name for name, _ in data), Static(tuple(static)), marks)


def _unflatten(cls: type[Pytree]) -> Any:
    def unflatten(aux: tuple[Any, ...], children: Any) -> Pytree:
        names, static, marks = aux
        obj = Object.__new__(cls)
        slots = obj.__dict__
        for name, child in zip(names, children):
            slots[name] = adopt(child)
        slots.update(static.value)
        if marks != _NO_MARKS:
            slots[MARKS] = marks
        return obj

    return unflatten


def _plain(value: Any) -> Any:
    """``value`` with its ``nnx.List``/``nnx.Dict`` containers as plain lists and dicts,
    so that JAX sees into them (unflattening adopts them back)."""
    if isinstance(value, List):
        items: List[Any] = value  # pyright: ignore[reportUnknownVariableType]
        return [_plain(v) for v in items]
    if isinstance(value, Dict):
        entries: Dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        return {k: _plain(v) for k, v in entries.items()}
    if type(value) is tuple:
        members: tuple[Any, ...] = value  # pyright: ignore[reportUnknownVariableType]
        return tuple(_plain(v) for v in members)
    return value


def _register(cls: type[Pytree]) -> None:
    jax.tree_util.register_pytree_with_keys(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
        cls, _flatten_with_keys, _unflatten(cls), _flatten
    )


_register(Pytree)
