"""``nnx.List`` and ``nnx.Dict``: Python containers that a module graph can track.

A plain ``list`` gives no signal when it is mutated, so a cached walk of the
graph could not know that ``model.layers.append(...)`` changed its shape.
Assigning a ``list`` or ``dict`` to a module attribute therefore stores an
``nnx.List`` / ``nnx.Dict`` copy: the same container API, plus a structure-epoch
bump on every mutation. (Like any copy, later mutations of the *original*
plain list are not seen by the module.)

Like every graph object, a container remembers the JAX trace it was made in,
and every mutation runs the same tracer-leak check as attribute assignment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, SupportsIndex, TypeVar, overload

from nnx import epoch
from nnx.refs import INERT, check_store, current_trace

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


def adopt(value: Any) -> Any:
    """Convert plain lists/dicts (also inside tuples) to tracked containers."""
    kind = type(value)  # pyright: ignore[reportUnknownVariableType]  # type() of Any is type[Unknown]
    if kind is list:
        return List(value)
    if kind is dict:
        tracked: Dict[Any, Any] = Dict(value)
        return tracked
    if kind is tuple and any(type(v) in (list, dict, tuple) for v in value):
        return tuple(adopt(v) for v in value)
    return value


def _checked(container: List[Any] | Dict[Any, Any], value: Any) -> Any:
    """``value`` adopted, after the tracer-leak check for storing it in ``container``."""
    value = adopt(value)
    if type(value) not in INERT:  # the hot path skips the call
        made_in = container.__dict__.get("_nnx_trace")
        check_store(made_in, value, lambda: f"an nnx.{type(container).__name__} made outside it")
    return value


class List(list[T]):
    """A list whose mutations are visible to the graph (an attribute-level ``list``)."""

    _nnx_trace: object

    def __new__(cls, *args: Any, **kwargs: Any) -> List[T]:
        made: List[T] = super().__new__(cls, *args, **kwargs)
        made._nnx_trace = current_trace()
        return made

    def __init__(self, items: Iterable[T] = ()) -> None:
        super().__init__(adopt(v) for v in items)

    def __setitem__(self, index: SupportsIndex | slice, value: Any) -> None:
        if isinstance(index, slice):
            value = [_checked(self, v) for v in value]
        else:
            value = _checked(self, value)
        super().__setitem__(index, value)
        epoch.bump(self)

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        super().__delitem__(index)
        epoch.bump(self)

    def append(self, value: T) -> None:
        super().append(_checked(self, value))
        epoch.bump(self)

    def extend(self, values: Iterable[T]) -> None:
        super().extend([_checked(self, v) for v in values])
        epoch.bump(self)

    def insert(self, index: SupportsIndex, value: T) -> None:
        super().insert(index, _checked(self, value))
        epoch.bump(self)

    def pop(self, index: SupportsIndex = -1) -> T:
        epoch.bump(self)
        return super().pop(index)

    def remove(self, value: T) -> None:
        super().remove(value)
        epoch.bump(self)

    def clear(self) -> None:
        super().clear()
        epoch.bump(self)

    def sort(self, *args: Any, **kwargs: Any) -> None:
        super().sort(*args, **kwargs)
        epoch.bump(self)

    def reverse(self) -> None:
        super().reverse()
        epoch.bump(self)

    def __iadd__(self, values: Iterable[T]) -> List[T]:  # type: ignore[override, misc]
        self.extend(values)
        return self

    def __imul__(self, n: SupportsIndex) -> List[T]:
        super().__imul__(n)
        epoch.bump(self)
        return self

    def __repr__(self) -> str:
        return f"nnx.List({super().__repr__()})"


class Dict(dict[K, V]):
    """A dict whose mutations are visible to the graph (an attribute-level ``dict``).

    As in Flax, a string key also reads and writes as an attribute at run time:
    ``d.a`` is ``d["a"]`` and ``d.a = x`` is ``d["a"] = x``. Type checkers see
    only the item spelling (so they still catch attribute typos), and names of
    ``dict`` methods (``d.keys``) stay methods.
    """

    _nnx_trace: object

    def __new__(cls, *args: Any, **kwargs: Any) -> Dict[K, V]:
        made: Dict[K, V] = super().__new__(cls, *args, **kwargs)
        made._nnx_trace = current_trace()
        return made

    # The constructor spellings of ``dict``, so that checkers infer ``K`` and ``V``.
    @overload
    def __init__(self) -> None: ...
    @overload
    def __init__(self: Dict[str, V], **kwargs: V) -> None: ...  # pyright: ignore[reportInvalidTypeVarUse]  # typeshed's dict does the same
    @overload
    def __init__(self, mapping: Mapping[K, V], /) -> None: ...
    @overload
    def __init__(self, items: Iterable[tuple[K, V]], /) -> None: ...
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        items: dict[Any, Any] = dict(*args, **kwargs)
        for k, v in items.items():
            super().__setitem__(k, adopt(v))

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, _checked(self, value))
        epoch.bump(self)

    def __delitem__(self, key: K) -> None:
        super().__delitem__(key)
        epoch.bump(self)

    def pop(self, key: K, *default: Any) -> Any:
        epoch.bump(self)
        return super().pop(key, *default)

    def popitem(self) -> tuple[K, V]:
        epoch.bump(self)
        return super().popitem()

    def clear(self) -> None:
        super().clear()
        epoch.bump(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        items: dict[Any, Any] = dict(*args, **kwargs)
        checked = {k: _checked(self, v) for k, v in items.items()}  # all or nothing
        for k, v in checked.items():
            super().__setitem__(k, v)
        epoch.bump(self)

    def setdefault(self, key: K, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other: Any) -> Dict[K, V]:  # type: ignore[override, misc]
        self.update(other)
        return self

    def __repr__(self) -> str:
        return f"nnx.Dict({super().__repr__()})"

    if not TYPE_CHECKING:  # run time only, like a cell's metadata attributes

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):  # internals and protocol probes (__deepcopy__, ...) are never keys
                raise AttributeError(name)
            try:
                return self[name]
            except KeyError:
                raise AttributeError(
                    f"nnx.Dict has no attribute or key {name!r}; its keys: {sorted(str(k) for k in self)}"
                ) from None

        def __setattr__(self, name: str, value: Any) -> None:
            if name.startswith("_"):
                object.__setattr__(self, name, value)
            elif hasattr(dict, name):
                raise AttributeError(f"nnx.Dict.{name} is a dict method; write the item as d[{name!r}] = ...")
            else:
                self[name] = value

        def __delattr__(self, name: str) -> None:
            if name.startswith("_") or name not in self:
                object.__delattr__(self, name)
            else:
                del self[name]
