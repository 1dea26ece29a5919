"""``nnx.remat``: ``jax.checkpoint`` for functions that take modules.

Activations inside the function are recomputed in the backward pass instead
of stored. State updates land on the caller's modules as with ``nnx.jit``;
use it inside ``nnx.grad`` (or around a layer's ``__call__``) to trade compute
for memory.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterable, TypeVar

from typing_extensions import ParamSpec

import nnx.jaxapi as jx
from nnx.modes import tree_for
from nnx.transforms.lift import Frame

P = ParamSpec("P")
R = TypeVar("R")


def remat(
    fun: Callable[P, R],
    *,
    prevent_cse: bool = True,
    static_argnums: int | Iterable[int] = (),
    policy: Callable[..., bool] | None = None,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> Callable[P, R]:
    """Recompute ``fun``'s intermediates on the backward pass (``jax.checkpoint``).
    ``graph=False``: tree mode (``nnx.modes``); ``graph_updates`` is accepted."""
    tree = tree_for("nnx.remat", graph, graph_updates)
    statics = frozenset((static_argnums,) if isinstance(static_argnums, int) else static_argnums)

    def is_static(key: int | str) -> bool:
        return key in statics

    @functools.wraps(fun)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        frame, dyn = Frame.of(args, kwargs, is_static, tree=tree)
        pure = frame.framedef.pure(fun, "nnx.remat")
        checkpointed = jx.checkpoint(pure, prevent_cse=prevent_cse, policy=policy)
        landing, new, out = checkpointed(frame.values(), *dyn)
        return frame.land(landing, new, out)  # type: ignore[no-any-return]

    return wrapper
