"""Control flow over modules: ``nnx.cond``, ``nnx.switch``, ``nnx.fori_loop``, ``nnx.while_loop``.

These are ``jax.lax``'s, with module operands: every branch (or iteration)
sees the module with the state the previous one left, and the caller's
objects hold the final state afterwards. Branches and loop bodies may update
state but not change structure (both branches of a ``cond`` must leave the
same structure, and a loop's carry must keep its shape).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

import jax

import nnx.jaxapi as jx
from nnx.modes import tree_for
from nnx.transforms.lift import Frame, FrameDef, Landing

T = TypeVar("T")


def _branch(fun: Callable[..., Any], framedef: FrameDef, where: str) -> Callable[..., Any]:
    return framedef.pure(fun, where, forward=False, structure=False)


def cond(
    pred: Any, true_fun: Callable[..., T], false_fun: Callable[..., T], *operands: Any, graph: bool | None = None, graph_updates: bool | None = None
) -> T:
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, traced as
    ``jax.lax.cond``; the branch's state updates land on the operands' modules.
    ``graph=False``: tree mode (``nnx.modes``); ``graph_updates`` is accepted."""
    frame, dyn = Frame.of(operands, {}, tree=tree_for("nnx.cond", graph, graph_updates))
    fd = frame.framedef
    landing, new, out = jx.cond(
        pred, _branch(true_fun, fd, "nnx.cond"), _branch(false_fun, fd, "nnx.cond"), frame.values(), *dyn
    )
    return frame.land(landing, new, out)  # type: ignore[no-any-return]


def switch(
    index: Any, branches: Sequence[Callable[..., T]], *operands: Any, graph: bool | None = None, graph_updates: bool | None = None
) -> T:
    """``branches[index](*operands)``, traced as ``jax.lax.switch``; ``graph``,
    ``graph_updates``: as for ``nnx.cond``."""
    frame, dyn = Frame.of(operands, {}, tree=tree_for("nnx.switch", graph, graph_updates))
    fd = frame.framedef
    landing, new, out = jx.switch(index, [_branch(b, fd, "nnx.switch") for b in branches], frame.values(), *dyn)
    return frame.land(landing, new, out)  # type: ignore[no-any-return]


def _loop_body(
    fun: Callable[..., Any], framedef: FrameDef, where: str, with_index: bool
) -> Callable[..., tuple[list[Any], list[Any]]]:
    def body(*loop_args: Any) -> tuple[list[Any], list[Any]]:
        *index, (values, dyn) = loop_args
        (val,), _, entered = framedef.enter(values, dyn)
        out = fun(*index, val) if with_index else fun(val)
        dyn_out = framedef.dyn_like(entered, (out,), where)
        _, new, _ = framedef.leave(entered, None, where=where, forward=False, structure=False)
        return new, dyn_out

    return body


def _loop_result(frame: Frame, new: list[Any], dyn: list[Any]) -> Any:
    frame.land(Landing(True, None, None, (), 0), new, None)
    (val,), _ = frame.framedef.reassemble(frame.roots, dyn)
    return val


def fori_loop(
    lower: int | jax.Array, upper: int | jax.Array, body_fun: Callable[[Any, T], T], init_val: T, *,
    unroll: int | bool | None = None, graph: bool | None = None, graph_updates: bool | None = None,
) -> T:  # fmt: skip
    """``body_fun(i, val)`` for ``i`` in ``[lower, upper)``; ``val`` may hold modules,
    which the body updates in place and returns. ``graph=False``: tree mode
    (``nnx.modes``); ``graph_updates`` is accepted."""
    frame, dyn = Frame.of((init_val,), {}, tree=tree_for("nnx.fori_loop", graph, graph_updates))
    body = _loop_body(body_fun, frame.framedef, "nnx.fori_loop", with_index=True)
    new, dyn_out = jx.fori_loop(lower, upper, body, (frame.values(), dyn), unroll=unroll)
    return _loop_result(frame, new, dyn_out)  # type: ignore[no-any-return]


def while_loop(
    cond_fun: Callable[[T], Any], body_fun: Callable[[T], T], init_val: T, *, graph: bool | None = None,
    graph_updates: bool | None = None,
) -> T:  # fmt: skip
    """``while cond_fun(val): val = body_fun(val)``; ``val`` may hold modules.
    ``cond_fun`` only reads: what it writes is discarded. ``graph``, ``graph_updates``:
    as for ``nnx.fori_loop``."""
    frame, dyn = Frame.of((init_val,), {}, tree=tree_for("nnx.while_loop", graph, graph_updates))
    fd = frame.framedef

    def cond(carry: tuple[list[Any], list[Any]]) -> Any:
        (val,), _, _ = fd.enter(*carry)
        return cond_fun(val)

    body = _loop_body(body_fun, fd, "nnx.while_loop", with_index=False)
    new, dyn_out = jx.while_loop(cond, body, (frame.values(), dyn))
    return _loop_result(frame, new, dyn_out)  # type: ignore[no-any-return]
