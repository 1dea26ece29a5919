"""``nnx.jit``: ``jax.jit`` for functions that take, mutate and return modules.

The wrapped function receives the caller's modules (really: private copies
built inside the trace from their state), may change them in any way, and
every change lands on the caller's objects when the call returns -- new
values in place, new or removed attributes by rebuilding just the objects
whose shape changed. Modules may appear in several arguments and share
submodules; the arguments are walked together, so sharing survives.

The cost per call is the point. One traced function is cached per *frame*
(the GraphDef of the module arguments plus the argument pattern). The last
call's frame is kept with the caller's cells, so while the structure epoch
has not moved and the same objects are passed, a call is: read the cells,
call the ``jax.jit`` function, write back the cells the function changed.
No graph walk, no GraphDef hashing, no pytree flattening of modules.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Generic, Iterable, TypeVar, cast, overload

from typing_extensions import Concatenate, ParamSpec, Self

from nnx import epoch
import nnx.jaxapi as jx
from nnx.transforms.lift import DYN, NODE, STATIC, Frame, FrameDef, _is_simple_leaf, is_graph_node

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")

_LEAF = object()  # quick pattern: an argument that is an array or scalar


class _Static:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Last:
    """The previous call: its frame, its jitted function and the quick argument check."""

    __slots__ = ("frame", "jitted", "quick")

    def __init__(self, frame: Frame, jitted: Any, quick: tuple[Any, ...]) -> None:
        self.frame = frame
        self.jitted = jitted
        self.quick = quick


class JitWrapped(Generic[P, R]):
    """A function compiled with ``nnx.jit``; call it like the function itself."""

    def __init__(
        self,
        fun: Callable[P, R],
        *,
        static_argnums: int | Iterable[int] = (),
        static_argnames: str | Iterable[str] = (),
        donate_argnums: int | Iterable[int] = (),
        **jit_kwargs: Any,
    ) -> None:
        self._fun = fun
        self._donate = frozenset((donate_argnums,) if isinstance(donate_argnums, int) else donate_argnums)
        self._static_argnums = frozenset((static_argnums,) if isinstance(static_argnums, int) else static_argnums)
        self._static_argnames = frozenset((static_argnames,) if isinstance(static_argnames, str) else static_argnames)
        self._jit_kwargs = jit_kwargs
        self._compiled: dict[FrameDef, Any] = {}
        self._last: _Last | None = None
        self._previous: Frame | None = None  # the last frame, whose walk a slow call may reuse
        functools.update_wrapper(self, fun)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        last = self._last
        if last is not None and not kwargs and last.frame.epoch == epoch._counter[0] and len(args) == len(last.quick):
            dyn: list[Any] = []
            for a, q in zip(args, last.quick):
                if q is _LEAF:
                    if not _is_simple_leaf(a):
                        break
                    dyn.append(a)
                elif type(q) is _Static:
                    if not (a is q.value or a == q.value):
                        break
                    dyn.append(None)
                elif a is not q:
                    break
                else:
                    dyn.append(None)
            else:
                frame = last.frame
                landing, new, out = last.jitted(frame.values(), *dyn)
                return frame.land(landing, new, out)  # type: ignore[no-any-return]
        return self._call(args, kwargs)

    def _frame(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Frame, list[Any], Any]:
        frame, dyn = Frame.of(args, kwargs, self._is_static, self._previous)
        self._previous = frame
        framedef = frame.framedef
        jitted = self._compiled.get(framedef)
        if jitted is None:
            jitted = self._compile(framedef)
            self._compiled[framedef] = jitted
        return frame, dyn, jitted

    def _compile(self, framedef: FrameDef) -> Any:
        """The ``jax.jit`` function for one frame: ``(state values, *dyn args)``.

        Donating a module argument donates the state of every module argument (they
        are one graph, passed as one list); then every leaf is returned, so that no
        cell keeps a donated buffer.
        """
        n_pos = len(framedef.patterns) - len(framedef.kwnames)
        donated = sorted(k for k in self._donate if k < n_pos)
        donate_state = any(framedef.patterns[k] is not DYN for k in donated)
        donate = tuple([0] if donate_state else []) + tuple(k + 1 for k in donated if framedef.patterns[k] is DYN)
        pure = framedef.pure(self._fun, "nnx.jit", forward=not donate_state)
        return jx.jit(pure, donate_argnums=donate, **self._jit_kwargs)

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        frame, dyn, jitted = self._frame(args, kwargs)
        landing, new, out = jitted(frame.values(), *dyn)
        result: R = frame.land(landing, new, out)
        self._remember(frame, jitted, args, kwargs)
        return result

    def _remember(self, frame: Frame, jitted: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Keep this call for the fast path if its arguments can be re-checked cheaply."""
        if kwargs or frame.epoch != epoch.current():
            self._last = None
            return
        quick: list[Any] = []
        for a, pattern in zip(args, frame.framedef.patterns):
            if pattern is NODE:
                quick.append(a)
            elif pattern is STATIC:
                quick.append(_Static(a))
            elif pattern is DYN and _is_simple_leaf(a):
                quick.append(_LEAF)
            else:
                self._last = None
                return
        self._last = _Last(frame, jitted, tuple(quick))

    def _is_static(self, key: int | str) -> bool:
        return key in self._static_argnums if isinstance(key, int) else key in self._static_argnames

    def lower(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """``jax.jit(...).lower`` for these arguments (e.g. ``.compile().memory_analysis()``)."""
        frame, dyn, jitted = self._frame(args, kwargs)
        return jitted.lower(frame.values(), *dyn)

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(
        self: JitWrapped[Concatenate[S, P2], R], instance: S, owner: type[Any] | None = None
    ) -> Callable[P2, R]: ...
    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        return functools.partial(self, instance)


@overload
def jit(
    fun: Callable[P, R],
    *,
    static_argnums: int | Iterable[int] = (),
    static_argnames: str | Iterable[str] = (),
    **jit_kwargs: Any,
) -> JitWrapped[P, R]: ...
@overload
def jit(
    fun: None = None,
    *,
    static_argnums: int | Iterable[int] = (),
    static_argnames: str | Iterable[str] = (),
    **jit_kwargs: Any,
) -> Callable[[Callable[P, R]], JitWrapped[P, R]]: ...
def jit(
    fun: Callable[P, R] | None = None,
    *,
    static_argnums: int | Iterable[int] = (),
    static_argnames: str | Iterable[str] = (),
    **jit_kwargs: Any,
) -> JitWrapped[P, R] | Callable[[Callable[P, R]], JitWrapped[P, R]]:
    """Compile ``fun`` with XLA; modules in its arguments are updated in place.

    Use it like ``jax.jit``: as ``nnx.jit(f)``, as ``@nnx.jit``, or as
    ``@nnx.jit(static_argnums=...)``. Other keyword arguments go to ``jax.jit``
    (``device``, ``keep_unused``, ``compiler_options`` ...). ``donate_argnums``
    lets XLA reuse the buffers of those arguments; donating a module argument
    donates the state of all module arguments. Decorating a method works,
    and so does ``nnx.jit(model.method)``: the bound module is an argument.
    """
    if fun is None:
        return lambda f: jit(f, static_argnums=static_argnums, static_argnames=static_argnames, **jit_kwargs)
    if inspect.ismethod(fun) and is_graph_node(fun.__self__):
        bound_to = fun.__self__
        if "donate_argnums" in jit_kwargs:
            jit_kwargs = {**jit_kwargs, "donate_argnums": _shift(jit_kwargs["donate_argnums"])}
        wrapped: JitWrapped[Any, R] = JitWrapped(
            fun.__func__, static_argnums=_shift(static_argnums), static_argnames=static_argnames, **jit_kwargs
        )
        return cast("JitWrapped[P, R]", _BoundJit(wrapped, bound_to))  # calls and lowers like one
    return JitWrapped(fun, static_argnums=static_argnums, static_argnames=static_argnames, **jit_kwargs)


def _shift(static_argnums: int | Iterable[int]) -> tuple[int, ...]:
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    return tuple(n + 1 for n in nums)


class _BoundJit:
    """``nnx.jit(module.method)``: the module is passed as the first argument, so its
    state is lifted instead of captured (a captured module could not be updated)."""

    def __init__(self, wrapped: JitWrapped[Any, Any], instance: Any) -> None:
        self._wrapped = wrapped
        self._instance = instance
        functools.update_wrapper(self, wrapped._fun)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrapped(self._instance, *args, **kwargs)

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """``jax.jit(...).lower`` for these arguments."""
        return self._wrapped.lower(self._instance, *args, **kwargs)
