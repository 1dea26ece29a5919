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

from typing import Any, Generic, TypeVar

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


class Ref(Generic[T]):
    """A mutable cell holding one value plus a metadata dictionary.

    ``ref.value`` reads the value; assigning ``ref.value = x`` replaces it, and
    everyone holding this same cell sees the new value.
    """

    __slots__ = ("_value", "_trace", "_metadata", "__weakref__")

    _value: T
    _trace: object
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
            raise TraceContextError(
                f"Cannot {action} {self._describe()}: it was created outside the JAX "
                "transform that is running now, so the write would leak a tracer into "
                "an object that outlives the transform. Pass the module to the "
                "transform as an argument with nnx.jit/nnx.grad/... , or use "
                "nnx.split(model) outside and nnx.merge(graphdef, state) inside, "
                "returning the new state."
            )

    def _describe(self) -> str:
        value = self._value
        shape = getattr(value, "shape", None)
        if shape is not None:
            return f"{type(self).__name__}(shape={tuple(shape)}, dtype={getattr(value, 'dtype', '?')})"
        return f"{type(self).__name__}({value!r})"
