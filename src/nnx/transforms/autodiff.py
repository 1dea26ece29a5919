"""``nnx.grad`` and ``nnx.value_and_grad``: gradients with respect to module state.

For a module argument the gradient is a ``State`` holding exactly the leaves
that match ``wrt`` (``nnx.Param`` by default), at their paths in that module;
for a Variable argument (``nnx.Param(x)``, when its kind matches ``wrt``) it is
a new cell of the same kind holding the gradient; for an array argument it is
an array, as with ``jax.grad``. Every other
change the function makes -- batch statistics, RNG counters, a ``Count``,
new attributes -- lands on the caller's objects, as with ``nnx.jit``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence, TypeVar, cast, overload

from typing_extensions import ParamSpec

from nnx.filters import Filter, describe, to_filter
from nnx.graph import _Slot, _walk_cached
from nnx.modes import tree_for
from nnx.transforms.axes import refuse_node_prefix
from nnx.state import Layout, State, path_str
import nnx.jaxapi as jx
from nnx.transforms.diff_state import ArgNums, DiffState
from nnx.transforms.lift import DYN, NODE, Frame, FrameDef
from nnx.variables import Param, Variable

P = ParamSpec("P")
R = TypeVar("R")


class _Target:
    """One differentiated argument: where its ``wrt`` leaves sit in the frame."""

    __slots__ = ("argnum", "layout", "indices", "cell")

    def __init__(self, argnum: int, layout: Layout | None, indices: list[int], cell: Variable[Any] | None = None) -> None:
        self.argnum = argnum
        self.layout = layout  # None: an array (or pytree) argument, differentiated as is
        self.indices = indices
        self.cell = cell  # a Variable argument: its one leaf is differentiated

    @property
    def is_array(self) -> bool:
        """Whether the argument is differentiated as a pytree of arrays (no graph)."""
        return self.layout is None and self.cell is None


def _cell_key(cell: Any) -> Any:
    if isinstance(cell, _Slot):
        return (id(cell.owner), cell.key)
    return id(cell)


def _targets(
    frame: Frame, args: Sequence[Any], argnums: Sequence[int | DiffState], default_wrt: Filter, where: str
) -> list[_Target]:
    position = {_cell_key(c): i for i, c in enumerate(frame.cells)}
    targets: list[_Target] = []
    for entry in argnums:
        k, wrt = (entry.argnum, entry.filter) if isinstance(entry, DiffState) else (entry, default_wrt)
        if k >= len(args):
            raise TypeError(f"{where}: argnums={k} but the function was called with {len(args)} positional arguments.")
        pattern = frame.framedef.patterns[k]
        if pattern is DYN:
            targets.append(_Target(k, None, []))
            continue
        if isinstance(args[k], Variable):
            targets.append(_variable_target(k, args[k], position, wrt, where))
            continue
        if pattern is not NODE:
            raise TypeError(
                f"{where}: argument {k} is a pytree holding modules ({type(args[k]).__name__}); "
                "differentiate with respect to a module itself, or pass the modules as separate arguments."
            )
        graphdef, cells = _walk_cached(args[k])
        layout = graphdef.layout

        def value_at(i: int) -> Any:
            cell = cells[i]
            return cell._value if isinstance(cell, _Slot) else cell

        (sub,), (idx,) = layout.split((wrt,), value_at, exhaustive=False, where=where)
        if not idx and layout.paths:  # a module with no state at all has an empty gradient
            kinds = sorted({k.__name__ if k is not None else "array" for k in layout.kinds})
            raise ValueError(
                f"{where}: wrt={describe((wrt,))} matches no state of argument {k} "
                f"({graphdef.type.__name__}); its state holds {kinds} at "
                f"{[path_str(p) for p in layout.paths][:8]}. Pass a filter that selects the "
                "leaves to differentiate, e.g. wrt=nnx.Param."
            )
        targets.append(_Target(k, sub, [position[_cell_key(cells[i])] for i in idx]))
    return targets


def _variable_target(k: int, var: Variable[Any], position: dict[Any, int], wrt: Filter, where: str) -> _Target:
    """A Variable argument is one leaf; it is differentiated when its kind matches ``wrt``."""
    if not to_filter(wrt).matches((), type(var), var._value):
        raise ValueError(
            f"{where}: argument {k} is a {type(var).__name__}, which wrt={describe((wrt,))} does not "
            f"match; pass a matching filter (e.g. wrt={type(var).__name__}) or differentiate another argument."
        )
    return _Target(k, None, [position[id(var)]], var)


def _is_pair(value: object) -> bool:
    return isinstance(value, tuple) and len(value) == 2  # pyright: ignore[reportUnknownArgumentType]


def _differentiable(
    fun: Callable[..., Any], framedef: FrameDef, targets: list[_Target], has_aux: bool, where: str
) -> Callable[..., Any]:
    """The pure function JAX differentiates: ``(diff inputs, values, dyn) -> (loss, aux)``."""

    def pure(diff: list[Any], values: list[Any], dyn: list[Any]) -> tuple[Any, Any]:
        values = list(values)
        dyn = list(dyn)
        for target, d in zip(targets, diff):
            if target.is_array:
                dyn[target.argnum] = d
            else:
                for i, v in zip(target.indices, d):
                    values[i] = v
        args, kwargs, entered = framedef.enter(values, dyn)
        out = fun(*args, **kwargs)
        if has_aux:
            if not _is_pair(out):
                raise TypeError(f"{where}: has_aux=True needs the function to return a pair (value, aux).")
            value, aux = out[0], out[1]
        else:
            value, aux = out, None
        return value, framedef.leave(entered, aux, where=where)

    return pure


def _run(
    fun: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    argnums: ArgNums,
    wrt: Filter,
    has_aux: bool,
    where: str,
    jax_kwargs: dict[str, Any],
    tree: str | None = None,
) -> tuple[Any, Any, Any]:
    """``(value, aux, grads)`` of ``fun`` at ``args``, with the state changes landed."""
    single = isinstance(argnums, (int, DiffState))
    nums: tuple[int | DiffState, ...] = (argnums,) if isinstance(argnums, (int, DiffState)) else tuple(argnums)
    frame, dyn = Frame.of(args, kwargs, tree=tree)
    targets = _targets(frame, args, nums, wrt, where)
    values = frame.values()
    diff = [dyn[t.argnum] if t.is_array else [values[i] for i in t.indices] for t in targets]
    pure = _differentiable(fun, frame.framedef, targets, has_aux, where)
    differentiated = jx.value_and_grad(pure, has_aux=True, **jax_kwargs)
    (value, (landing, new, aux)), grads = differentiated(diff, values, dyn)
    aux = frame.land(landing, new, aux)
    states = [_gradient(t, g) for t, g in zip(targets, grads)]
    return value, aux, states[0] if single else tuple(states)


def _gradient(target: _Target, grads: Any) -> Any:
    """What the caller gets for one argument: an array, a new cell, or a State."""
    if target.cell is not None:
        return target.cell.replace(grads[0])
    if target.layout is None:
        return grads
    return State._make(target.layout, list(grads))


@overload
def grad(
    fun: Callable[P, Any],
    argnums: ArgNums = 0,
    *,
    has_aux: bool = False,
    wrt: Filter = Param,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **jax_kwargs: Any,
) -> Callable[P, Any]: ...
@overload
def grad(
    fun: None = None,
    argnums: ArgNums = 0,
    *,
    has_aux: bool = False,
    wrt: Filter = Param,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **jax_kwargs: Any,
) -> Callable[[Callable[P, Any]], Callable[P, Any]]: ...
def grad(
    fun: Callable[P, Any] | None = None,
    argnums: ArgNums = 0,
    *,
    has_aux: bool = False,
    wrt: Filter = Param,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **jax_kwargs: Any,
) -> Callable[P, Any] | Callable[[Callable[P, Any]], Callable[P, Any]]:
    """The gradient of ``fun`` with respect to argument ``argnums``.

    For a module argument the gradient is a ``State`` of the leaves matching
    ``wrt``; for an array it is an array. With ``has_aux=True`` ``fun`` returns
    ``(value, aux)`` and the result is ``(grads, aux)``. ``graph=False``: tree mode
    (``nnx.modes``); ``graph_updates`` is accepted, every update comes back. Without
    ``fun``, a decorator: ``@nnx.grad(argnums=1)``.
    """
    tree = tree_for("nnx.grad", graph, graph_updates)
    refuse_node_prefix(argnums, "argnums", "nnx.grad")
    if fun is None:
        return lambda f: grad(f, argnums, has_aux=has_aux, wrt=wrt, graph=graph, graph_updates=graph_updates, **jax_kwargs)
    differentiated = fun

    @functools.wraps(differentiated)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        _, aux, grads = _run(differentiated, args, kwargs, argnums, wrt, has_aux, "nnx.grad", jax_kwargs, tree)
        return (grads, aux) if has_aux else grads

    return wrapper


@overload
def value_and_grad(
    fun: Callable[P, R],
    argnums: ArgNums = 0,
    *,
    has_aux: bool = False,
    wrt: Filter = Param,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **jax_kwargs: Any,
) -> Callable[P, tuple[R, Any]]: ...
@overload
def value_and_grad(
    fun: None = None,
    argnums: ArgNums = 0,
    *,
    has_aux: bool = False,
    wrt: Filter = Param,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **jax_kwargs: Any,
) -> Callable[[Callable[P, R]], Callable[P, tuple[R, Any]]]: ...
def value_and_grad(
    fun: Callable[P, R] | None = None,
    argnums: ArgNums = 0,
    *,
    has_aux: bool = False,
    wrt: Filter = Param,
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **jax_kwargs: Any,
) -> Callable[P, tuple[R, Any]] | Callable[[Callable[P, R]], Callable[P, tuple[R, Any]]]:
    """``fun``'s value and its gradient (see ``nnx.grad``): ``(value, grads)``, or
    ``((value, aux), grads)`` with ``has_aux=True`` -- in both cases the first item is
    what ``fun`` returns, so the checker knows its type. ``graph``, ``graph_updates``: as for
    ``nnx.grad``. Without ``fun``, a decorator."""
    tree = tree_for("nnx.value_and_grad", graph, graph_updates)
    refuse_node_prefix(argnums, "argnums", "nnx.value_and_grad")
    if fun is None:
        return lambda f: value_and_grad(
            f, argnums, has_aux=has_aux, wrt=wrt, graph=graph, graph_updates=graph_updates, **jax_kwargs
        )
    differentiated = fun

    @functools.wraps(differentiated)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> tuple[R, Any]:
        value, aux, grads = _run(differentiated, args, kwargs, argnums, wrt, has_aux, "nnx.value_and_grad", jax_kwargs, tree)
        result = cast(R, (value, aux) if has_aux else value)  # what fun returned, rebuilt
        return result, grads

    return wrapper
