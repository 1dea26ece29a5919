"""Variables: ref cells with a *kind*.

The kind (``Param``, ``BatchStat``, a user subclass such as
``class Count(nnx.Variable): pass``) says what the state is for, and every kind
has a collection name (``Param`` -> ``"params"``) so that filters can select
it by type or by string. A Variable behaves like the array it holds: ``v @ w``,
``v + 1``, ``v[0]`` and ``jnp.asarray(v)`` all work on the value, and ``v += 1``
writes the sum back into the same cell.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import jax

from nnx import epoch
from nnx.refs import Ref, current_trace

T = TypeVar("T")
V = TypeVar("V", bound="Variable[Any]")

#: collection name -> the Variable kinds that declare it, in definition order.
_COLLECTIONS: dict[str, list[type[Variable[Any]]]] = {}


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Variable(Ref[T]):
    """A cell of state that belongs to a module: parameters, statistics, counters.

    Subclass it to make a new kind; the collection name is derived from the
    class name (``class Count(Variable)`` -> ``"count"``) or given explicitly:
    ``class Count(nnx.Variable, collection="counts")``.
    """

    __slots__ = ()
    collection: ClassVar[str] = "variables"
    #: Kinds whose cells appear while the model runs (``Intermediate``, ``Cache``), not in
    #: ``__init__``: a declared field of such a kind need not be assigned by construction.
    created_lazily: ClassVar[bool] = False

    if TYPE_CHECKING:
        # A Variable computes with whatever array-like value it holds, so the raw
        # slot is typed ``Any`` here; the public ``value`` keeps the type ``T``.
        _value: Any

    def __init_subclass__(cls, *, collection: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if collection is None:
            declared: str | None = cls.__dict__.get("collection")
            collection = declared or _snake_case(cls.__name__)
        cls.collection = collection
        _COLLECTIONS.setdefault(collection, []).append(cls)
        jax.tree_util.register_pytree_with_keys(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
            cls, _flatten_with_keys, _unflatten(cls), _flatten
        )

    def __init__(self, value: T, **metadata: Any) -> None:
        if isinstance(value, Boxed):  # e.g. from nnx.with_partitioning(init, axes)
            boxed: Boxed = value
            metadata = {**boxed.metadata, **metadata}
            value = boxed.value
        super().__init__(value, **metadata)

    def set_metadata(self, **metadata: Any) -> None:
        """Add or replace metadata entries (e.g. ``sharding=("embed", "mlp")``)."""
        self._metadata = {**self._metadata, **metadata}
        epoch.bump(self)  # metadata is part of the GraphDef

    def replace(self: V, value: Any) -> V:
        """A new, unshared cell of the same kind and metadata holding ``value``."""
        return type(self)._from_raw(value, dict(self._metadata), current_trace())

    def __repr__(self) -> str:
        value = self._value
        shape = getattr(value, "shape", None)
        shown = f"{getattr(value, 'dtype', '')}{list(shape)}" if shape is not None else repr(value)
        meta = "".join(f", {k}={v!r}" for k, v in self._metadata.items())
        return f"{type(self).__name__}({shown}{meta})"

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # Metadata reads as attributes (``param.sharding``) at run time only,
            # so that checkers still catch typos in real attributes.
            try:
                return object.__getattribute__(self, "_metadata")[name]
            except KeyError:
                raise AttributeError(
                    f"{type(self).__name__} has no attribute or metadata {name!r}; "
                    f"metadata keys: {sorted(self._metadata)}"
                ) from None

    # -- behaving like the value ------------------------------------------
    def __jax_array__(self) -> jax.Array:
        value: jax.Array = self._value
        return value

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        return np.asarray(self._value, dtype=dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the held array."""
        return tuple(self._value.shape)

    @property
    def dtype(self) -> Any:
        """The dtype of the held array."""
        return self._value.dtype

    def __len__(self) -> int:
        return len(self._value)

    def __iter__(self) -> Any:
        return iter(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __float__(self) -> float:
        return float(self._value)

    def __index__(self) -> int:
        index: int = self._value.__index__()
        return index

    def __getitem__(self, index: Any) -> Any:
        return self._value[index]

    def __setitem__(self, index: Any, item: Any) -> None:
        self.value = self._value.at[index].set(item)

    def __eq__(self, other: object) -> Any:
        return self._value == _unwrap(other)

    def __ne__(self, other: object) -> Any:
        return self._value != _unwrap(other)

    __hash__ = None  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]  # equality is by value, like arrays

    def __neg__(self) -> Any:
        return -self._value

    def __pos__(self) -> Any:
        return +self._value

    def __abs__(self) -> Any:
        return abs(self._value)

    def __invert__(self) -> Any:
        return ~self._value

    def __add__(self, other: Any) -> Any:
        return self._value + _unwrap(other)

    def __radd__(self, other: Any) -> Any:
        return _unwrap(other) + self._value

    def __sub__(self, other: Any) -> Any:
        return self._value - _unwrap(other)

    def __rsub__(self, other: Any) -> Any:
        return _unwrap(other) - self._value

    def __mul__(self, other: Any) -> Any:
        return self._value * _unwrap(other)

    def __rmul__(self, other: Any) -> Any:
        return _unwrap(other) * self._value

    def __truediv__(self, other: Any) -> Any:
        return self._value / _unwrap(other)

    def __rtruediv__(self, other: Any) -> Any:
        return _unwrap(other) / self._value

    def __floordiv__(self, other: Any) -> Any:
        return self._value // _unwrap(other)

    def __rfloordiv__(self, other: Any) -> Any:
        return _unwrap(other) // self._value

    def __mod__(self, other: Any) -> Any:
        return self._value % _unwrap(other)

    def __rmod__(self, other: Any) -> Any:
        return _unwrap(other) % self._value

    def __pow__(self, other: Any) -> Any:
        return self._value ** _unwrap(other)

    def __rpow__(self, other: Any) -> Any:
        return _unwrap(other) ** self._value

    def __matmul__(self, other: Any) -> Any:
        return self._value @ _unwrap(other)

    def __rmatmul__(self, other: Any) -> Any:
        return _unwrap(other) @ self._value

    def __lt__(self, other: Any) -> Any:
        return self._value < _unwrap(other)

    def __le__(self, other: Any) -> Any:
        return self._value <= _unwrap(other)

    def __gt__(self, other: Any) -> Any:
        return self._value > _unwrap(other)

    def __ge__(self, other: Any) -> Any:
        return self._value >= _unwrap(other)

    def __and__(self, other: Any) -> Any:
        return self._value & _unwrap(other)

    def __or__(self, other: Any) -> Any:
        return self._value | _unwrap(other)

    def __xor__(self, other: Any) -> Any:
        return self._value ^ _unwrap(other)

    # In-place operators write the result into this same cell and return it,
    # so ``self.count += 1`` on a module keeps the (possibly shared) cell.
    def __iadd__(self: V, other: Any) -> V:
        self.value = self._value + _unwrap(other)
        return self

    def __isub__(self: V, other: Any) -> V:
        self.value = self._value - _unwrap(other)
        return self

    def __imul__(self: V, other: Any) -> V:
        self.value = self._value * _unwrap(other)
        return self

    def __itruediv__(self: V, other: Any) -> V:
        self.value = self._value / _unwrap(other)
        return self

    def __imatmul__(self: V, other: Any) -> V:
        self.value = self._value @ _unwrap(other)
        return self


class Boxed:
    """A value travelling with Variable metadata, unboxed when a Variable is made from it.

    Initialisers wrapped by ``nnx.with_partitioning`` return one, so that
    ``nnx.Param(init(key, shape))`` (or assigning it to a declared field) gives a
    cell whose metadata names the sharding axes. It is a pytree (the value is
    its only child), so it survives ``jax.eval_shape`` and ``jax.jit``.
    """

    __slots__ = ("value", "metadata")

    def __init__(self, value: Any, **metadata: Any) -> None:
        self.value = value
        self.metadata = metadata

    def __repr__(self) -> str:
        return f"Boxed({self.value!r}, {self.metadata!r})"


jax.tree_util.register_pytree_node(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    Boxed,
    lambda box: ((box.value,), tuple(box.metadata.items())),
    lambda meta, children: Boxed(children[0], **dict(meta)),
)


def _unwrap(x: Any) -> Any:
    return x._value if isinstance(x, Variable) else x


def _flatten(v: Variable[Any]) -> tuple[tuple[Any], tuple[tuple[str, Any], ...]]:
    return (v._value,), tuple(v._metadata.items())


def _flatten_with_keys(v: Variable[Any]) -> tuple[tuple[tuple[Any, Any]], tuple[tuple[str, Any], ...]]:
    return ((jax.tree_util.GetAttrKey("value"), v._value),), tuple(v._metadata.items())


def _unflatten(cls: type[Variable[Any]]) -> Any:
    def unflatten(metadata: tuple[tuple[str, Any], ...], children: Any) -> Variable[Any]:
        return cls._from_raw(children[0], dict(metadata), current_trace())

    return unflatten


jax.tree_util.register_pytree_with_keys(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    Variable, _flatten_with_keys, _unflatten(Variable), _flatten
)


def kinds_of_collection(collection: str) -> list[type[Variable[Any]]]:
    """The Variable kinds whose collection name is ``collection`` (may be empty)."""
    return list(_COLLECTIONS.get(collection, ()))


def known_collections() -> list[str]:
    """Every collection name some Variable kind declares, sorted."""
    return sorted(_COLLECTIONS)


def kind_in_collection(kind: type[Any], collection: str) -> bool:
    """Whether ``kind`` or one of its Variable bases has collection ``collection``."""
    return any(base.collection == collection for base in kind.__mro__ if issubclass(base, Variable))


def unknown_collection_error(collection: str, where: str) -> ValueError:
    """The error for a collection string that no Variable kind declares."""
    return ValueError(
        f"{where}: unknown collection {collection!r}. Known collections: "
        f"{', '.join(repr(c) for c in known_collections())}. Use one of those, a Variable "
        "type such as nnx.Param, or declare a kind with `class MyKind(nnx.Variable, "
        f"collection={collection!r})`."
    )


class Param(Variable[T], collection="params"):
    """A trainable parameter."""

    __slots__ = ()


class BatchStat(Variable[T], collection="batch_stats"):
    """A running statistic (e.g. BatchNorm mean and variance); not trained by gradients."""

    __slots__ = ()


class Cache(Variable[T], collection="cache"):
    """Autoregressive decoding state (e.g. an attention kv-cache)."""

    __slots__ = ()
    created_lazily = True


class Intermediate(Variable[T], collection="intermediates"):
    """A value captured during a forward pass (``module.sow``) to be popped afterwards."""

    __slots__ = ()
    created_lazily = True


class RngState(Variable[T], collection="rngs"):
    """Base kind of the state held by ``nnx.Rngs`` streams."""

    __slots__ = ()


class RngKey(RngState[T], collection="rng_keys"):
    """The base key of an RNG stream."""

    __slots__ = ()


class RngCount(RngState[T], collection="rng_counts"):
    """How many keys an RNG stream has handed out."""

    __slots__ = ()
