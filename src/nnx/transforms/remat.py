"""``nnx.remat``: ``jax.checkpoint`` for functions that take modules.

Activations inside the function are recomputed in the backward pass instead
of stored. State updates land on the caller's modules as with ``nnx.jit``;
use it inside ``nnx.grad`` (or around a layer's ``__call__``) to trade compute
for memory.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterable, TypeVar, overload

from typing_extensions import ParamSpec

import nnx.jaxapi as jx
from nnx.modes import tree_for
from nnx.transforms.lift import Frame

P = ParamSpec("P")
R = TypeVar("R")


@overload
def remat(
    fun: Callable[P, R],
    *,
    prevent_cse: bool = True,
    static_argnums: int | Iterable[int] = (),
    policy: Callable[..., bool] | None = None,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> Callable[P, R]: ...
@overload
def remat(
    fun: None = None,
    *,
    prevent_cse: bool = True,
    static_argnums: int | Iterable[int] = (),
    policy: Callable[..., bool] | None = None,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def remat(
    fun: Callable[P, R] | None = None,
    *,
    prevent_cse: bool = True,
    static_argnums: int | Iterable[int] = (),
    policy: Callable[..., bool] | None = None,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Recompute ``fun``'s intermediates on the backward pass (``jax.checkpoint``).

    ``nnx.remat(f)``, ``@nnx.remat`` or ``@nnx.remat(policy=...)``. ``graph=False``:
    tree mode (``nnx.modes``); ``graph_updates`` is accepted.
    """
    tree = tree_for("nnx.remat", graph, graph_updates)
    if fun is None:
        return lambda f: remat(
            f, prevent_cse=prevent_cse, static_argnums=static_argnums, policy=policy, graph=graph,
            graph_updates=graph_updates,
        )  # fmt: skip
    body = fun
    statics = frozenset((static_argnums,) if isinstance(static_argnums, int) else static_argnums)

    def is_static(key: int | str) -> bool:
        return key in statics

    @functools.wraps(body)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        frame, dyn = Frame.of(args, kwargs, is_static, tree=tree)
        pure = frame.framedef.pure(body, "nnx.remat")
        checkpointed = jx.checkpoint(pure, prevent_cse=prevent_cse, policy=policy)
        landing, new, out = checkpointed(frame.values(), *dyn)
        return frame.land(landing, new, out)  # type: ignore[no-any-return]

    return wrapper
