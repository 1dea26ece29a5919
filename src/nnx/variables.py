"""Variables: ref cells with a *kind*.

The kind (``Param``, ``BatchStat``, a user subclass such as
``class Count(nnx.Variable): pass``) says what the state is for, and every kind
has a collection name (``Param`` -> ``"params"``) so that filters can select
it by type or by string. A Variable behaves like the array it holds: ``v @ w``,
``v + 1``, ``v[0]`` and ``jnp.asarray(v)`` all work on the value, and ``v += 1``
writes the sum back into the same cell.

Reads and writes of the value go through two methods a subclass may
override, as in Flax: ``get_value()`` (what ``v.value``, ``v[...]``, the
operators and ``jnp.asarray(v)`` see) and ``set_value(x)`` (what
``v.value = x`` and ``v[...] = x`` store). The graph layer and the transforms
move *raw* values (``get_raw_value()``): splitting a model, ``nnx.jit`` and
``nnx.update`` never call the hooks, so a State leaf is what the cell stores
and the hot paths pay nothing for the hooks.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, ClassVar, TypeVar, overload

import jax
import numpy as np

from nnx import epoch
from nnx.refs import Ref, check_store, current_trace

T = TypeVar("T")
V = TypeVar("V", bound="Variable[Any]")

#: "no argument given" for ``get_value(index=)`` / ``get_metadata(default=)``.
_MISSING: Any = object()

#: collection name -> the Variable kinds that declare it, in definition order.
_COLLECTIONS: dict[str, list[type[Variable[Any]]]] = {}


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Variable(Ref[T]):
    """A cell of state that belongs to a module: parameters, statistics, counters.

    Subclass it to make a new kind; the collection name is derived from the
    class name (``class Count(Variable)`` -> ``"count"``) or given explicitly:
    ``class Count(nnx.Variable, collection="counts")``.

    A Variable holds an array: a ``jax.Array``, a numeric NumPy array or scalar,
    a Python ``int``/``float``/``bool``/``complex`` (as Flax allows), an abstract
    ``jax.ShapeDtypeStruct``, or a pytree of those (``sow`` keeps a tuple, an
    optimizer its optax state). Anything else (a string, a Module, an arbitrary
    object) is refused when the cell is made or written, not later inside a
    transform.
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
        check_value(value, lambda: f"nnx.{type(self).__name__}(...)")
        super().__init__(value, **metadata)

    # -- the value, through overridable hooks --------------------------------
    def get_value(self, *, index: Any = _MISSING) -> T:
        """The value (``v.value``); ``index=`` reads ``value[index]`` (what ``v[index]`` does).

        Override it in a subclass to change what every read sees, e.g. a
        parameter stored quantised and read back dequantised.
        """
        value: Any = self._value
        if index is _MISSING or (index is Ellipsis and _is_array(value)):
            return value  # type: ignore[no-any-return]  # ``[...]`` of an array is the array: no copy, no op
        return value[index]  # type: ignore[no-any-return]

    def set_value(self, value: Any, *, index: Any = _MISSING) -> None:
        """Store ``value`` (``v.value = x``); ``index=`` writes ``value`` into ``v[index]``.

        Every holder of this cell sees the write. ``index=...`` with an array of
        the same shape and dtype stores that array itself; other indices write
        functionally (``.at[index].set``). Override it in a subclass to change
        what every write stores.
        """
        self._check_trace("write to")
        if type(value) not in _HOLDABLE:  # the hot path skips the call
            check_value(value, lambda: f"writing {type(self).__name__}.value")
        if index is _MISSING:
            self._value = value
            return
        current = self._value
        if index is Ellipsis and _same_aval(value, current):
            self._value = value
        elif hasattr(current, "at"):
            self._value = current.at[index].set(value)
        else:  # a mutable container (dict, list) or NumPy array
            current[index] = value

    @property
    def value(self) -> T:
        """The value held by this cell (``get_value()``); assigning calls ``set_value``."""
        return self.get_value()

    @value.setter
    def value(self, value: T) -> None:
        self.set_value(value)

    def get_raw_value(self) -> T:
        """The stored value, bypassing ``get_value`` (what a State leaf holds)."""
        return self._value  # type: ignore[no-any-return]  # the raw slot is Any (see above)

    def set_raw_value(self, value: T) -> None:
        """Store ``value`` bypassing ``set_value`` (what ``nnx.update`` does)."""
        self._check_trace("write to")
        self._value = value

    # -- metadata --------------------------------------------------------------
    @overload
    def get_metadata(self) -> dict[str, Any]: ...
    @overload
    def get_metadata(self, name: str, default: Any = ...) -> Any: ...
    def get_metadata(self, name: str | None = None, default: Any = _MISSING) -> Any:
        """All metadata (a copy), or the entry ``name`` (``default`` when missing, if given)."""
        if name is None:
            return dict(self._metadata)
        if name in self._metadata:
            return self._metadata[name]
        if default is not _MISSING:
            return default
        raise KeyError(
            f"{type(self).__name__} has no metadata {name!r}; its metadata keys: "
            f"{sorted(self._metadata)}. Pass a default: get_metadata({name!r}, None)."
        )

    @overload
    def set_metadata(self, metadata: dict[str, Any], /) -> None: ...
    @overload
    def set_metadata(self, name: str, value: Any, /) -> None: ...
    @overload
    def set_metadata(self, /, **metadata: Any) -> None: ...
    def set_metadata(self, /, *args: Any, **metadata: Any) -> None:
        """Add or replace metadata entries: ``set_metadata(sharding=("embed", "mlp"))``,
        ``set_metadata("sharding", axes)``; ``set_metadata({...})`` replaces all of it."""
        check_store(self._trace, (args, metadata), lambda: f"the metadata of a {type(self).__name__}")
        if len(args) == 1 and isinstance(args[0], dict) and not metadata:
            replaced: dict[str, Any] = dict(args[0])  # pyright: ignore[reportUnknownArgumentType]
            self._metadata = replaced
        elif len(args) == 2 and isinstance(args[0], str) and not metadata:
            self._metadata = {**self._metadata, args[0]: args[1]}
        elif not args:
            self._metadata = {**self._metadata, **metadata}
        else:
            raise TypeError(
                f"{type(self).__name__}.set_metadata takes keywords (set_metadata(a=1)), one "
                f"name and value (set_metadata('a', 1)) or one dict; got {args!r} and {metadata!r}."
            )
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
            # At run time only (checkers still catch typos in real attributes):
            # metadata reads as an attribute (``param.initializer``), and, as in
            # Flax, any other public name is looked up on the stored value
            # (``param.astype``, ``param.reshape``).
            metadata = object.__getattribute__(self, "_metadata")
            if name in metadata:
                return metadata[name]
            if not name.startswith("_"):
                value = object.__getattribute__(self, "_value")
                if hasattr(value, name):
                    return getattr(value, name)
            raise AttributeError(
                f"{type(self).__name__} has no attribute or metadata {name!r}, and its "
                f"value ({type(object.__getattribute__(self, '_value')).__name__}) has none "
                f"either; metadata keys: {sorted(metadata)}"
            )

    # -- behaving like the value ------------------------------------------
    # Value computations read through ``get_value`` (a subclass hook applies);
    # descriptions of the stored array (shape, dtype, sharding) read the raw slot.
    def __jax_array__(self) -> jax.Array:
        value: jax.Array = _get(self)
        return value

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        return np.asarray(_get(self), dtype=dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the held array."""
        return tuple(self._value.shape)

    @property
    def dtype(self) -> Any:
        """The dtype of the held array."""
        return self._value.dtype

    @property
    def ndim(self) -> int:
        """The number of axes of the held array."""
        ndim: int = self._value.ndim
        return ndim

    @property
    def size(self) -> int:
        """The number of elements of the held array."""
        size: int = self._value.size
        return size

    @property
    def sharding(self) -> Any:
        """Where the held array lives (its ``jax.sharding.Sharding``), as in Flax.

        The logical axis names given by ``nnx.with_partitioning`` are metadata:
        ``get_metadata("sharding")``.
        """
        return self._value.sharding

    @property
    def T(self) -> Any:
        """The transposed value."""
        return _get(self).T

    def __len__(self) -> int:
        return len(_get(self))

    def __iter__(self) -> Any:
        return iter(_get(self))

    def __bool__(self) -> bool:
        return bool(_get(self))

    def __int__(self) -> int:
        return int(_get(self))

    def __float__(self) -> float:
        return float(_get(self))

    def __index__(self) -> int:
        index: int = _get(self).__index__()
        return index

    @overload
    def __getitem__(self: Variable[jax.Array], index: Any) -> jax.Array: ...
    @overload
    def __getitem__(self, index: Any) -> Any: ...
    def __getitem__(self, index: Any) -> Any:
        """``v[...]`` is the whole value; ``v[i]`` a part of it (``get_value(index=i)``)."""
        return self.get_value(index=index)

    def __setitem__(self, index: Any, item: Any) -> None:
        """``v[...] = x`` stores ``x`` into this cell (``set_value(x, index=...)``)."""
        self.set_value(_unwrap(item), index=index)

    def __eq__(self, other: object) -> Any:
        return _get(self) == _unwrap(other)

    def __ne__(self, other: object) -> Any:
        return _get(self) != _unwrap(other)

    __hash__ = None  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]  # equality is by value, like arrays

    def __neg__(self) -> Any:
        return -_get(self)

    def __pos__(self) -> Any:
        return +_get(self)

    def __abs__(self) -> Any:
        return abs(_get(self))

    def __invert__(self) -> Any:
        return ~_get(self)

    def __add__(self, other: Any) -> Any:
        return _get(self) + _unwrap(other)

    def __radd__(self, other: Any) -> Any:
        return _unwrap(other) + _get(self)

    def __sub__(self, other: Any) -> Any:
        return _get(self) - _unwrap(other)

    def __rsub__(self, other: Any) -> Any:
        return _unwrap(other) - _get(self)

    def __mul__(self, other: Any) -> Any:
        return _get(self) * _unwrap(other)

    def __rmul__(self, other: Any) -> Any:
        return _unwrap(other) * _get(self)

    def __truediv__(self, other: Any) -> Any:
        return _get(self) / _unwrap(other)

    def __rtruediv__(self, other: Any) -> Any:
        return _unwrap(other) / _get(self)

    def __floordiv__(self, other: Any) -> Any:
        return _get(self) // _unwrap(other)

    def __rfloordiv__(self, other: Any) -> Any:
        return _unwrap(other) // _get(self)

    def __mod__(self, other: Any) -> Any:
        return _get(self) % _unwrap(other)

    def __rmod__(self, other: Any) -> Any:
        return _unwrap(other) % _get(self)

    def __pow__(self, other: Any) -> Any:
        return _get(self) ** _unwrap(other)

    def __rpow__(self, other: Any) -> Any:
        return _unwrap(other) ** _get(self)

    def __matmul__(self, other: Any) -> Any:
        return _get(self) @ _unwrap(other)

    def __rmatmul__(self, other: Any) -> Any:
        return _unwrap(other) @ _get(self)

    def __lt__(self, other: Any) -> Any:
        return _get(self) < _unwrap(other)

    def __le__(self, other: Any) -> Any:
        return _get(self) <= _unwrap(other)

    def __gt__(self, other: Any) -> Any:
        return _get(self) > _unwrap(other)

    def __ge__(self, other: Any) -> Any:
        return _get(self) >= _unwrap(other)

    def __and__(self, other: Any) -> Any:
        return _get(self) & _unwrap(other)

    def __or__(self, other: Any) -> Any:
        return _get(self) | _unwrap(other)

    def __xor__(self, other: Any) -> Any:
        return _get(self) ^ _unwrap(other)

    # In-place operators write the result into this same cell and return it,
    # so ``self.count += 1`` on a module keeps the (possibly shared) cell.
    def __iadd__(self: V, other: Any) -> V:
        self.set_value(_get(self) + _unwrap(other))
        return self

    def __isub__(self: V, other: Any) -> V:
        self.set_value(_get(self) - _unwrap(other))
        return self

    def __imul__(self: V, other: Any) -> V:
        self.set_value(_get(self) * _unwrap(other))
        return self

    def __itruediv__(self: V, other: Any) -> V:
        self.set_value(_get(self) / _unwrap(other))
        return self

    def __imatmul__(self: V, other: Any) -> V:
        self.set_value(_get(self) @ _unwrap(other))
        return self


#: Leaf types a Variable may hold, checked with one set lookup. Concrete JAX array
#: and tracer types (private to JAX) join on first sight.
_HOLDABLE: set[type] = {int, float, bool, complex}


def check_value(value: Any, where: Callable[[], str]) -> None:
    """Refuse a value no Variable may hold (see ``Variable``), naming ``where()`` it went.

    A value of a known type costs one set lookup; otherwise the pytree is flattened
    and each leaf must be array-like."""
    if type(value) in _HOLDABLE:
        return
    for raw in jax.tree_util.tree_leaves(value):
        leaf: object = raw
        if type(leaf) in _HOLDABLE:
            continue
        if isinstance(leaf, jax.Array):
            _HOLDABLE.add(type(leaf))
            continue
        if isinstance(leaf, np.ndarray | np.generic):
            if np.dtype(leaf.dtype).kind in "biufc":  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]  # numpy stubs
                continue
        elif isinstance(leaf, jax.ShapeDtypeStruct) or hasattr(leaf, "__jax_array__"):
            continue
        shown = " ".join(repr(raw).split())  # one line, even for a module's tree
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise TypeError(
            f"{where()}: a Variable holds an array, but got {type(raw).__name__} {shown}. "
            "Accepted: a jax.Array, a numeric NumPy array or scalar, a Python int/float/bool/"
            "complex, a jax.ShapeDtypeStruct, or a pytree (tuple, list, dict) of those. Keep "
            "other values (strings, modules, config objects) as plain attributes or nnx.static() fields."
        )


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


def _is_array(value: Any) -> bool:
    return isinstance(value, jax.Array)


def _get(v: Variable[Any]) -> Any:
    """``v.get_value()``, typed ``Any`` so the operators can compute with it."""
    return v.get_value()


def _unwrap(x: Any) -> Any:
    return _get(x) if isinstance(x, Variable) else x  # pyright: ignore[reportUnknownArgumentType]  # Any narrowed to Variable[Unknown]


def _same_aval(new: Any, old: Any) -> bool:
    """Whether ``new`` can replace ``old`` outright in ``v[...] = new`` (same shape and dtype)."""
    return (
        isinstance(new, jax.Array)
        and isinstance(old, jax.Array)
        and new.shape == old.shape
        and new.dtype == old.dtype
    )


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
        f"collection={collection!r})`. (In Flax a string filter also matches a path name or an RNG "
        f"stream's tag: for the state under an attribute or stream named {collection!r}, write "
        f"nnx.PathContains({collection!r}); for that stream's RNG state only, "
        f"nnx.All(nnx.RngState, nnx.PathContains({collection!r})).)"
    )


class Param(Variable[T], collection="params"):
    """A trainable parameter."""

    __slots__ = ()


class LoRAParam(Param[jax.Array], collection="lora"):
    """A trainable weight of a low-rank adapter (a kind of ``Param``): ``nnx.LoRA`` makes
    them. It lives with the built-in kinds, as the checkers' filtered parts know it."""

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


class Perturbation(Intermediate[T], collection="perturbations"):
    """A zero added to a value in the forward pass (``module.perturb``), whose gradient is
    the gradient with respect to that value; an ``Intermediate``, so created lazily."""

    __slots__ = ()


class RngState(Variable[T], collection="rngs"):
    """Base kind of the state held by ``nnx.Rngs`` streams."""

    __slots__ = ()


class RngKey(RngState[T], collection="rng_keys"):
    """The base key of an RNG stream."""

    __slots__ = ()


class RngCount(RngState[T], collection="rng_counts"):
    """How many keys an RNG stream has handed out."""

    __slots__ = ()
