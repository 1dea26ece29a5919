"""State classes of nnx's own objects that are not layers (``Rngs``, ``RngStream``,
``Optimizer``, the metrics), for type checkers only: ``nnx.state(optimizer).step`` is a
``jax.Array`` and ``nnx.state(optimizer).stpe`` an error. Written by hand, because a
stream's name or a ``MultiMetric``'s entries are chosen at run time, where ``nnx.stubgen``
cannot see them; ``tests/test_object_states.py`` holds each against run time. There is
no run-time module."""

import typing as _t

import jax

from nnx.metrics import Accuracy, Average, MultiMetric, Welford
from nnx.optim import Optimizer
from nnx.rngs import Rngs, RngStream
from nnx.state import State as _State

class RngStreamState(_State[RngStream]):
    key: jax.Array
    count: jax.Array
    __getattr__: None  # type: ignore[misc, assignment]  # pyright: ignore[reportIncompatibleMethodOverride]  # no fallback: unknown paths are errors
    def __setattr__(self, name: _t.NoReturn, value: _t.Any) -> None: ...  # type: ignore[misc, override]  # pyright: ignore[reportIncompatibleMethodOverride]  # nor writes
    @_t.overload
    def __getitem__(self, key: _t.Literal["key", "count"]) -> jax.Array: ...
    @_t.overload
    def __getitem__(self, key: str | int) -> _t.Any: ...

class RngsState(_State[Rngs]):
    """One entry per stream, named when the ``Rngs`` is made (``Rngs(0, dropout=1)``)."""

    def __getattr__(self, name: str) -> RngStreamState: ...
    def __getitem__(self, key: str | int) -> RngStreamState: ...

class OptimizerState(_State[Optimizer]):
    step: jax.Array
    opt_state: _t.Any  # the optax state's own structure
    model: _t.Any  # the trained model's State
    __getattr__: None  # type: ignore[misc, assignment]  # pyright: ignore[reportIncompatibleMethodOverride]  # no fallback: unknown paths are errors
    def __setattr__(self, name: _t.NoReturn, value: _t.Any) -> None: ...  # type: ignore[misc, override]  # pyright: ignore[reportIncompatibleMethodOverride]  # nor writes

class AverageState(_State[Average]):
    total: jax.Array
    count: jax.Array
    __getattr__: None  # type: ignore[misc, assignment]  # pyright: ignore[reportIncompatibleMethodOverride]  # no fallback: unknown paths are errors
    def __setattr__(self, name: _t.NoReturn, value: _t.Any) -> None: ...  # type: ignore[misc, override]  # pyright: ignore[reportIncompatibleMethodOverride]  # nor writes

class AccuracyState(_State[Accuracy]):
    total: jax.Array
    count: jax.Array
    __getattr__: None  # type: ignore[misc, assignment]  # pyright: ignore[reportIncompatibleMethodOverride]  # no fallback: unknown paths are errors
    def __setattr__(self, name: _t.NoReturn, value: _t.Any) -> None: ...  # type: ignore[misc, override]  # pyright: ignore[reportIncompatibleMethodOverride]  # nor writes

class WelfordState(_State[Welford]):
    count: jax.Array
    mean: jax.Array
    m2: jax.Array
    __getattr__: None  # type: ignore[misc, assignment]  # pyright: ignore[reportIncompatibleMethodOverride]  # no fallback: unknown paths are errors
    def __setattr__(self, name: _t.NoReturn, value: _t.Any) -> None: ...  # type: ignore[misc, override]  # pyright: ignore[reportIncompatibleMethodOverride]  # nor writes

class MultiMetricState(_State[MultiMetric]):
    """One entry per metric, named when the ``MultiMetric`` is made."""

    def __getattr__(self, name: str) -> _t.Any: ...
