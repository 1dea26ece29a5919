"""``nnx.make_jaxpr``: the jaxpr of a function of modules, for inspection.

``nnx.make_jaxpr(f)(model, x)`` traces ``f`` the way the transforms do --
module state as inputs, the state it writes as outputs -- and returns JAX's
``ClosedJaxpr``. It only traces: the caller's modules are not changed.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
from typing_extensions import ParamSpec

from nnx.modes import tree_for
from nnx.transforms.lift import Frame

P = ParamSpec("P")


def make_jaxpr(
    f: Callable[P, Any], *, graph: bool | None = None, graph_updates: bool | None = None, **make_jaxpr_kwargs: Any
) -> Callable[P, Any]:
    """``jax.make_jaxpr`` of ``f``: its inputs are the module arguments' state leaves and
    the other arguments; its outputs the state leaves ``f`` wrote and ``f``'s output.
    Other keywords go to ``jax.make_jaxpr``. ``graph=False`` (tree mode, ``nnx.modes``):
    the arguments may share nothing."""
    tree = tree_for("nnx.make_jaxpr", graph, graph_updates)
    kwargs = make_jaxpr_kwargs

    @functools.wraps(f)
    def wrapper(*args: P.args, **kw: P.kwargs) -> Any:
        frame, dyn = Frame.of(args, kw, tree=tree)
        return _jax_make_jaxpr(frame.framedef.pure(f, "nnx.make_jaxpr"), kwargs)(frame.values(), *dyn)

    return wrapper


def _jax_make_jaxpr(fun: Callable[..., Any], kwargs: dict[str, Any]) -> Callable[..., Any]:
    return jax.make_jaxpr(fun, **kwargs)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # jax: fun is a bare Callable
