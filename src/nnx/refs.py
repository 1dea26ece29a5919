"""Ref cells: a mutable box holding one value plus metadata.

A ``Ref`` is the unit of sharing: two modules that hold the same ``Ref`` object
share that state, and a write through either is seen by both. Identity is
what sharing means; values are never compared to decide it.

A cell remembers the JAX trace it was created under. Writing to it from
another trace (for example a model captured by a closure and mutated inside
plain ``jax.jit``) would store a tracer into an object that outlives the
trace, so it is refused with an error that explains the way out.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

import jax
import numpy as np
from jax.core import Tracer
from jax.extend.core import get_opaque_trace_state  # pyright: ignore[reportUnknownVariableType]  # untyped in jax

T = TypeVar("T")
R = TypeVar("R", bound="Ref[Any]")


_last_token: list[object] = [None]


def current_trace() -> object:
    """An opaque token for the JAX trace active right now (equal tokens = same trace).

    Tokens are interned while the trace stays the same, so the common check
    "same trace as when this cell was made" is an identity test.
    """
    token = get_opaque_trace_state(None)  # type: ignore[no-untyped-call]  # untyped in jax
    last = _last_token[0]
    if last is not None and last == token:
        return last
    _last_token[0] = token
    return token


class TraceContextError(RuntimeError):
    """A cell was written from a JAX trace other than the one it was created in."""


def trace_error(action: str, what: str) -> TraceContextError:
    """The error for a write (``action``) into ``what`` from a foreign JAX trace."""
    return TraceContextError(
        f"Cannot {action} {what}: it was created outside the JAX "
        "transform that is running now, so the write would leak a tracer into "
        "an object that outlives the transform. Pass the module to the "
        "transform as an argument with nnx.jit/nnx.grad/... , or use "
        "nnx.split(model) outside and nnx.merge(graphdef, state) inside, "
        "returning the new state."
    )


#: Types that can never hold a tracer: storing one needs no trace check (the hot path).
#: Concrete JAX array types join on first sight (they are private to JAX).
INERT: set[type] = {int, float, complex, bool, str, bytes, type(None), np.ndarray}


def check_store(made_in: object, value: Any, where: Callable[[], str]) -> None:
    """Refuse to store ``value`` into a graph object made in trace ``made_in`` when the
    value holds a tracer of another trace (it would outlive that trace).

    Every path that puts a value into a graph object -- attribute assignment, an
    ``nnx.List``/``nnx.Dict`` mutation, ``sow``, ``set_metadata``, landing a transform's
    results -- calls this one check. ``where()`` names the destination (called only to
    build the error). The common cases cost one set lookup (an inert value), one
    identity test (a module or cell made in the owner's trace) or one trace compare.
    """
    if type(value) in INERT or made_in is None:
        return
    # A graph object or cell made in the owner's own trace holds no tracer of another
    # trace (every store into it was checked): the usual case in ``__init__``.
    own = value._trace if isinstance(value, Ref) else getattr(value, "_nnx_trace", None)
    if own is made_in:
        return
    if isinstance(value, jax.Array) and not isinstance(value, Tracer):
        INERT.add(type(value))
        return
    now = current_trace()
    if now is made_in or now == made_in or not holds_tracer(value):
        return
    raise TraceContextError(
        f"Cannot store a JAX tracer in {where()}: that object was created outside the JAX "
        "transform that is running now, so the tracer would outlive the transform and fail "
        "later, far from here. Pass the module to the transform as an argument (nnx.jit, "
        "nnx.vmap, nnx.grad, ...) so that its changes are carried out, or return the value "
        "instead of storing it."
    )


def holds_tracer(value: Any) -> bool:
    """Whether ``value`` is, or reaches, a JAX tracer: inside tuples, lists, dicts, cells,
    graph objects' attributes and registered pytrees (each object looked at once)."""
    seen: set[int] = set()
    todo: list[Any] = [value]
    while todo:
        item = todo.pop()
        if type(item) in INERT:
            continue
        if isinstance(item, Tracer):
            return True
        if isinstance(item, jax.Array):
            INERT.add(type(item))
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Ref):
            cell: Ref[Any] = item  # pyright: ignore[reportUnknownVariableType]  # Any narrowed to Ref[Unknown]
            todo.append(cell._value)
            todo.extend(cell._metadata.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)  # pyright: ignore[reportUnknownArgumentType]
        elif isinstance(item, dict):
            todo.extend(item.values())  # pyright: ignore[reportUnknownArgumentType]
        elif hasattr(type(item), "_nnx_trace") and hasattr(item, "__dict__"):  # pyright: ignore[reportUnknownArgumentType]  # a graph object
            todo.extend(vars(item).values())  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]
        else:
            leaves = jax.tree_util.tree_leaves(item)
            if not (len(leaves) == 1 and leaves[0] is item):
                todo.extend(leaves)
    return False


class Ref(Generic[T]):
    """A mutable cell holding one value plus a metadata dictionary.

    ``ref.value`` reads the value; assigning ``ref.value = x`` replaces it, and
    everyone holding this same cell sees the new value.
    """

    __slots__ = ("_value", "_trace", "_metadata", "__weakref__")

    _value: T
    _trace: object
    # Replaced, never changed in place (``set_metadata`` builds a new dict), so that
    # cells may share one: ``nnx.merge`` gives its cells one dict per distinct metadata.
    _metadata: dict[str, Any]

    def __init__(self, value: T, **metadata: Any) -> None:
        self._value = value
        self._trace = current_trace()
        self._metadata = metadata

    @classmethod
    def _from_raw(cls: type[R], value: Any, metadata: dict[str, Any], trace: object) -> R:
        """Build a cell without running ``__init__`` (the graph layer's fast path)."""
        cell = object.__new__(cls)
        cell._value = value
        cell._trace = trace
        cell._metadata = metadata
        return cell

    @property
    def value(self) -> T:
        """The value held by this cell."""
        return self._value

    @value.setter
    def value(self, value: T) -> None:
        self._check_trace("write to")
        self._value = value

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of this cell's metadata (e.g. sharding axis names)."""
        return dict(self._metadata)

    def _check_trace(self, action: str) -> None:
        trace = current_trace()
        if trace is not self._trace and trace != self._trace:
            raise trace_error(action, self._describe())

    def _describe(self) -> str:
        value = self._value
        shape = getattr(value, "shape", None)
        if shape is not None:
            return f"{type(self).__name__}(shape={tuple(shape)}, dtype={getattr(value, 'dtype', '?')})"
        return f"{type(self).__name__}({value!r})"
