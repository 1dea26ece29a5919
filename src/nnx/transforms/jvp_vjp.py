"""``nnx.vjp`` and ``nnx.jvp``: ``jax.vjp``/``jax.jvp`` for functions of modules.

Every positional argument is differentiated, as in JAX. A module argument's
differentiated state is the leaves matching ``wrt`` (``nnx.Param`` by
default), and it is spelled as for ``nnx.grad``: its cotangent (from
``vjp_fn``) is a ``State`` of those leaves, and its tangent (given to ``jvp``)
is a ``State`` with entries at some of them -- a leaf left out has a zero
tangent::

    y, vjp_fn = nnx.vjp(loss, model, x)
    model_ct, x_ct = vjp_fn(jnp.ones_like(y))

    tangent = jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param))
    y, y_dot = nnx.jvp(loss, (model, x), (tangent, jnp.ones_like(x)))

Whatever else the function changes in its module arguments (batch
statistics, counters) lands on the caller's objects, once.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from nnx.filters import Filter
from nnx.modes import tree_for
from nnx.state import State, path_str
from nnx.transforms.autodiff import _differentiable, _gradient, _targets, _Target
from nnx.transforms.lift import Frame
from nnx.variables import Param, Variable


def _prepare(
    fun: Callable[..., Any], primals: Sequence[Any], wrt: Filter, has_aux: bool, where: str, tree: str | None
) -> tuple[Frame, list[_Target], list[Any], Callable[[list[Any]], Any]]:
    """The frame of ``primals``, its differentiated targets, their values, and the pure
    function of those values (returning ``(output, (landing, new, aux))``)."""
    args = tuple(primals)
    frame, dyn = Frame.of(args, {}, tree=tree)
    targets = _targets(frame, args, tuple(range(len(args))), wrt, where)
    values = frame.values()
    diff = [dyn[t.argnum] if t.is_array else [values[i] for i in t.indices] for t in targets]
    pure = _differentiable(fun, frame.framedef, targets, has_aux, where)
    return frame, targets, diff, lambda d: pure(d, values, dyn)


def vjp(
    fun: Callable[..., Any] | None = None,
    *primals: Any,
    has_aux: bool = False,
    wrt: Filter = Param,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> Any:
    """``(output, vjp_fn)`` (``(output, vjp_fn, aux)`` with ``has_aux=True``): ``vjp_fn(ct)``
    gives one cotangent per primal -- a State for a module, an array for an array.
    ``@nnx.vjp(has_aux=...)`` without ``fun`` is a decorator whose function returns them.
    ``graph=False`` (tree mode, ``nnx.modes``): the primals may share nothing."""
    where = "nnx.vjp"
    tree = tree_for(where, graph, graph_updates)
    if fun is None:

        def later(f: Callable[..., Any], *args: Any) -> Any:
            return vjp(f, *args, has_aux=has_aux, wrt=wrt, graph=graph, graph_updates=graph_updates)

        return _decorator(later)
    frame, targets, diff, pure = _prepare(fun, primals, wrt, has_aux, where, tree)
    value, pullback, (landing, new, aux) = _jax_vjp(pure, diff)
    aux = frame.land(landing, new, aux)

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        (grads,) = pullback(cotangent)
        return tuple(_gradient(t, g) for t, g in zip(targets, grads))

    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def jvp(
    fun: Callable[..., Any] | None = None,
    primals: Sequence[Any] = (),
    tangents: Sequence[Any] = (),
    *,
    has_aux: bool = False,
    wrt: Filter = Param,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> Any:
    """``(output, output_tangent)`` (plus ``aux`` with ``has_aux=True``) of ``fun`` at
    ``primals`` along ``tangents`` (one per primal: a State for a module, an array for
    an array). ``@nnx.jvp(...)`` without ``fun`` is a decorator: ``f(primals, tangents)``.
    ``graph=False`` (tree mode, ``nnx.modes``): the primals may share nothing."""
    where = "nnx.jvp"
    tree = tree_for(where, graph, graph_updates)
    if fun is None:

        def later(f: Callable[..., Any], p: Sequence[Any], t: Sequence[Any]) -> Any:
            return jvp(f, p, t, has_aux=has_aux, wrt=wrt, graph=graph, graph_updates=graph_updates)

        return _decorator(later)
    if len(tangents) != len(primals):
        raise ValueError(f"{where}: got {len(primals)} primals but {len(tangents)} tangents; give one tangent per primal.")
    frame, targets, diff, pure = _prepare(fun, primals, wrt, has_aux, where, tree)
    tangent_diff = [_tangent_of(t, tangents[t.argnum], d, where) for t, d in zip(targets, diff)]
    value, value_dot, (landing, new, aux) = _jax_jvp(pure, diff, tangent_diff)
    aux = frame.land(landing, new, aux)
    return (value, value_dot, aux) if has_aux else (value, value_dot)


def _jax_vjp(pure: Callable[[list[Any]], Any], diff: list[Any]) -> tuple[Any, Callable[[Any], tuple[Any]], Any]:
    """``jax.vjp(pure, diff, has_aux=True)``, typed."""
    out: tuple[Any, Callable[[Any], tuple[Any]], Any] = jax.vjp(pure, diff, has_aux=True)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # jax: the pullback is (...) -> Unknown
    return out


def _jax_jvp(pure: Callable[[list[Any]], Any], diff: list[Any], tangent: list[Any]) -> tuple[Any, Any, Any]:
    """``jax.jvp(pure, (diff,), (tangent,), has_aux=True)``, typed."""
    out: tuple[Any, ...] = jax.jvp(pure, (diff,), (tangent,), has_aux=True)  # pyright: ignore[reportUnknownMemberType]  # jax: fun's result unknown
    return out[0], out[1], out[2]


def _tangent_of(target: _Target, tangent: Any, primal: Any, where: str) -> Any:
    """A target's tangent in the form its differentiated values have."""
    if target.is_array:
        return tangent
    if target.cell is not None:
        value = tangent._value if isinstance(tangent, Variable) else tangent
        return [jnp.asarray(value, dtype=primal[0].dtype)]
    assert target.layout is not None
    if not isinstance(tangent, State):
        raise TypeError(
            f"{where}: the tangent of module argument {target.argnum} must be a State of its "
            f"differentiated leaves (e.g. jax.tree.map(jnp.ones_like, nnx.state(module, nnx.Param))); "
            f"got {type(tangent).__name__}."
        )
    given = dict(zip(tangent.paths, tangent.leaves))
    known = set(target.layout.paths)
    extra = [path_str(p) for p in given if p not in known]
    if extra:
        raise ValueError(f"{where}: the tangent of argument {target.argnum} has entries {extra} that are not differentiated state.")
    return [
        jnp.asarray(given[p], dtype=v.dtype) if p in given else jnp.zeros_like(v) for p, v in zip(target.layout.paths, primal)
    ]


def _decorator(apply: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@nnx.vjp(...)``/``@nnx.jvp(...)``: calling the result calls ``apply(fun, *args)``."""

    def decorate(fun: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fun)
        def wrapper(*args: Any) -> Any:
            return apply(fun, *args)

        return wrapper

    return decorate
