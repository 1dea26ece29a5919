"""``nnx.capture``: call a module and collect what it sowed.

``self.sow(nnx.Intermediate, "features", h)`` records values in cells of the
module. ``nnx.capture(model, nnx.Intermediate)(x)`` calls ``model(x)`` and
returns ``(output, intermediates)``: the recorded cells of that kind, popped
out of the model (so the next call starts clean) as a ``State``::

    y, feats = nnx.capture(model, nnx.Intermediate)(x)
    feats["encoder"]["features"]      # the tuple of values sowed there

``fn`` may be a module (its ``__call__``), a bound method of a module, or a
function whose first argument is the module. With several kinds the result
is ``(output, state_1, state_2, ...)``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from nnx.graph import pop
from nnx.objects import Object
from nnx.state import State
from nnx.variables import Variable

Kind = type[Variable[Any]]


def capture(fn: Callable[..., Any], /, *kinds: Kind) -> Callable[..., tuple[Any, ...]]:
    """``fn`` returning ``(output, *states)``, one State per kind, popped from the module."""
    if not kinds:
        raise TypeError("nnx.capture needs at least one Variable kind to collect, e.g. nnx.capture(model, nnx.Intermediate).")
    bound = _module_of(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        module = bound if bound is not None else (args[0] if args else None)
        if not isinstance(module, Object):
            raise TypeError(
                "nnx.capture: cannot tell which module to collect from: pass a module, a bound method "
                f"of one, or a function whose first argument is the module (got {type(module).__name__})."
            )
        out: Any = fn(*args, **kwargs)
        states: Any = pop(module, *kinds)  # one State, or a tuple of them for several kinds
        popped: tuple[State[Any], ...] = tuple(states) if len(kinds) > 1 else (states,)
        return (out, *popped)

    return wrapper


def _module_of(fn: object) -> Object | None:
    """The module ``fn`` is (or is a bound method of); None for a plain function."""
    if inspect.ismethod(fn):
        owner: object = fn.__self__
        return owner if isinstance(owner, Object) else None
    return fn if isinstance(fn, Object) else None
