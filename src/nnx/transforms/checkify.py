"""``nnx.checkify``: ``jax.experimental.checkify`` for functions of modules.

``err, out = nnx.checkify(f, errors=checkify.float_checks)(model, x)`` runs
``f`` with JAX's functional error checks; ``err.throw()`` raises the first
error found. State changes land on the caller's modules, as with ``nnx.jit``
(also when an error was recorded: checkify reports errors, it does not stop
the computation).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from jax.experimental import checkify as jax_checkify
from typing_extensions import ParamSpec

from nnx.modes import tree_for
from nnx.transforms.lift import Frame

P = ParamSpec("P")
R = TypeVar("R")


def checkify(
    f: Callable[P, R],
    *,
    errors: Any = jax_checkify.user_checks,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> Callable[P, tuple[Any, R]]:
    """``f`` returning ``(error, output)``; ``errors`` is the set of checks
    (``checkify.user_checks`` by default, ``checkify.float_checks``, ...).
    ``graph=False`` (tree mode, ``nnx.modes``): the arguments may share nothing."""
    where = "nnx.checkify"
    tree = tree_for(where, graph, graph_updates)

    @functools.wraps(f)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> tuple[Any, R]:
        frame, dyn = Frame.of(args, kwargs, tree=tree)
        checked: Any = jax_checkify.checkify(frame.framedef.pure(f, where), errors=errors)
        err, (landing, new, out) = checked(frame.values(), *dyn)
        result: R = frame.land(landing, new, out)
        return err, result

    return wrapper
