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

import nnx.jaxapi as jx
from nnx.jaxapi import tree_unflatten
from nnx.modes import tree_for
from nnx.state import State
from nnx.variables import Variable
from nnx.transforms.axes import StateAxes, broadcast_prefix, refuse_node_prefix
from nnx.transforms.state_specs import filtered_spec
from nnx.transforms.lift import DYN, NODE, STATIC, Frame, FrameDef, Mixed, _is_simple_leaf, is_graph_node

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")

_LEAF = object()  # quick pattern: an argument that is an array or scalar
_UNSET = object()  # in_shardings / out_shardings not given: jax.jit's own default

ArgNums = int | Iterable[int] | None
ArgNames = str | Iterable[str] | None


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
        static_argnums: ArgNums = (),
        static_argnames: ArgNames = (),
        donate_argnums: ArgNums = (),
        donate_argnames: ArgNames = (),
        in_shardings: Any = _UNSET,
        out_shardings: Any = _UNSET,
        graph: bool | None = None,
        graph_updates: bool | None = None,
        **jit_kwargs: Any,
    ) -> None:
        # First: update_wrapper copies ``fun.__dict__`` into ours, which must not
        # overwrite our own attributes (a wrapper made with functools.wraps around a
        # callable object carries that object's attributes, ``_fun`` among them).
        functools.update_wrapper(self, fun)
        self._fun = fun
        self._tree = tree_for("nnx.jit", graph, graph_updates)
        # As in jax.jit, a static (donated) argument is one however it is passed:
        # by position or by name; None means none, as in jax.jit.
        self._static_argnums, self._static_argnames = _both_ways(fun, _nums(static_argnums), _names(static_argnames))
        self._donate_argnums, self._donate_argnames = _both_ways(fun, _nums(donate_argnums), _names(donate_argnames))
        refuse_node_prefix(in_shardings, "in_shardings", "nnx.jit")
        refuse_node_prefix(out_shardings, "out_shardings", "nnx.jit")
        self._in_shardings = in_shardings
        self._out_shardings = out_shardings
        self._jit_kwargs = jit_kwargs
        self._compiled: dict[FrameDef, Any] = {}
        self._last: _Last | None = None
        self._previous: Frame | None = None  # the last frame, whose walk a slow call may reuse

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        last = self._last
        if last is not None and not kwargs and len(args) == len(last.quick) and last.frame.still_valid():
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
        frame, dyn = Frame.of(args, kwargs, self._is_static, self._previous, self._tree)
        self._previous = frame
        framedef = frame.framedef
        jitted = self._compiled.get(framedef)
        if jitted is None:
            jitted = self._compile(framedef)
            self._compiled[framedef] = jitted
        return frame, dyn, jitted

    def _compile(self, framedef: FrameDef) -> Any:
        """The ``jax.jit`` function for one frame: ``(state values, *dyn args)``.

        The arguments of that function are laid out differently from the user's,
        so donation and shardings are mapped onto it: a module argument's entry
        applies to its state (the leaves of the one ``values`` list), the rest to
        the argument's place among the dyn arguments. Donating a module argument
        donates the state of every module argument (they are one graph, passed as
        one list); then every leaf is returned, so that no cell keeps a donated buffer.
        """
        donated = [j for j in range(len(framedef.patterns)) if self._is_donated(framedef, j)]
        donate_state = any(framedef.patterns[j] is not DYN for j in donated)
        donate = tuple([0] if donate_state else []) + tuple(j + 1 for j in donated if framedef.patterns[j] is DYN)
        pure = framedef.pure(self._fun, "nnx.jit", forward=not donate_state)
        kwargs = dict(self._jit_kwargs)
        if self._in_shardings is not _UNSET:
            kwargs["in_shardings"] = _internal_in_shardings(framedef, self._in_shardings)
        if self._out_shardings is not _UNSET:
            kwargs["out_shardings"] = (None, None, self._out_shardings)  # (landing, state, output)
        return jx.jit(pure, donate_argnums=donate, **kwargs)

    def _is_donated(self, framedef: FrameDef, j: int) -> bool:
        n_pos = len(framedef.patterns) - len(framedef.kwnames)
        if j < n_pos:
            return j in self._donate_argnums
        return framedef.kwnames[j - n_pos] in self._donate_argnames

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        frame, dyn, jitted = self._frame(args, kwargs)
        landing, new, out = jitted(frame.values(), *dyn)
        result: R = frame.land(landing, new, out)
        self._remember(frame, jitted, args, kwargs)
        return result

    def _remember(self, frame: Frame, jitted: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Keep this call for the fast path if its arguments can be re-checked cheaply."""
        if kwargs or not frame.still_valid():
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
    static_argnums: ArgNums = (),
    static_argnames: ArgNames = (),
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **jit_kwargs: Any,
) -> JitWrapped[P, R]: ...
@overload
def jit(
    fun: None = None,
    *,
    static_argnums: ArgNums = (),
    static_argnames: ArgNames = (),
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **jit_kwargs: Any,
) -> Callable[[Callable[P, R]], JitWrapped[P, R]]: ...
def jit(
    fun: Callable[P, R] | None = None,
    *,
    static_argnums: ArgNums = (),
    static_argnames: ArgNames = (),
    graph: bool | None = None,
    graph_updates: bool | None = None,
    **jit_kwargs: Any,
) -> JitWrapped[P, R] | Callable[[Callable[P, R]], JitWrapped[P, R]]:
    """Compile ``fun`` with XLA; modules in its arguments are updated in place.

    Use it like ``jax.jit``: as ``nnx.jit(f)``, as ``@nnx.jit``, or as
    ``@nnx.jit(static_argnums=...)``. Other keyword arguments go to ``jax.jit``
    (``device``, ``keep_unused``, ``compiler_options`` ...). ``donate_argnums``
    / ``donate_argnames`` let XLA reuse the buffers of those arguments; donating
    a module argument donates the state of all module arguments.
    ``in_shardings`` (one entry per non-static positional argument, or one for
    all) and ``out_shardings`` are ``jax.jit``'s; a module argument's entry is a
    sharding for all of its state or a State of shardings
    (``nnx.get_named_sharding(state, mesh, rules)``). Decorating a method works,
    and so does ``nnx.jit(model.method)``: the bound module is an argument.
    ``graph=False`` runs in tree mode (the arguments may share no Variable or
    module; see ``nnx.modes``); ``graph_updates`` is accepted, and either way
    every update comes back.
    """
    if fun is None:
        return lambda f: jit(
            f, static_argnums=static_argnums, static_argnames=static_argnames, graph=graph,
            graph_updates=graph_updates, **jit_kwargs,
        )  # fmt: skip
    if inspect.ismethod(fun) and is_graph_node(fun.__self__):
        bound_to = fun.__self__
        if "donate_argnums" in jit_kwargs:
            jit_kwargs = {**jit_kwargs, "donate_argnums": _shift(jit_kwargs["donate_argnums"])}
        if isinstance(jit_kwargs.get("in_shardings"), (tuple, list)):  # the bound module's entry
            jit_kwargs = {**jit_kwargs, "in_shardings": (None, *jit_kwargs["in_shardings"])}
        wrapped: JitWrapped[Any, R] = JitWrapped(
            fun.__func__, static_argnums=_shift(static_argnums), static_argnames=static_argnames, graph=graph,
            graph_updates=graph_updates, **jit_kwargs,
        )  # fmt: skip
        return cast("JitWrapped[P, R]", _BoundJit(wrapped, bound_to))  # calls and lowers like one
    return JitWrapped(
        fun, static_argnums=static_argnums, static_argnames=static_argnames, graph=graph,
        graph_updates=graph_updates, **jit_kwargs,
    )  # fmt: skip


def _nums(argnums: ArgNums) -> frozenset[int]:
    if argnums is None:
        return frozenset()
    return frozenset((argnums,) if isinstance(argnums, int) else argnums)


def _names(argnames: ArgNames) -> frozenset[str]:
    if argnames is None:
        return frozenset()
    return frozenset((argnames,) if isinstance(argnames, str) else argnames)


def _both_ways(fun: Callable[..., Any], nums: frozenset[int], names: frozenset[str]) -> tuple[frozenset[int], frozenset[str]]:
    """Complete argument numbers and names from each other via the signature."""
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):  # builtins and some callables have no signature
        return nums, names
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    nums = nums | {i for i, n in enumerate(positional) if n in names}
    names = names | {positional[i] for i in nums if i < len(positional) and params[i].kind is not params[i].POSITIONAL_ONLY}
    return nums, names


def _shift(argnums: ArgNums) -> tuple[int, ...]:
    return tuple(n + 1 for n in sorted(_nums(argnums)))


def _internal_in_shardings(framedef: FrameDef, given: Any) -> tuple[Any, ...]:
    """Map the user's ``in_shardings`` onto ``(state values, *dyn)``.

    ``given`` is one entry per non-static positional argument (a tuple or list,
    as in ``jax.jit``) or one entry for every argument. A module argument's entry
    (a sharding, ``None``, or a State of them) applies to its state; an argument
    passed by keyword is left to the compiler (``jax.jit`` takes no shardings
    for keyword arguments).
    """
    patterns = framedef.patterns
    n_pos = len(patterns) - len(framedef.kwnames)
    dynamic = [j for j in range(n_pos) if patterns[j] is not STATIC]
    if isinstance(given, (tuple, list)):
        entries = list(cast("Iterable[Any]", given))
        if len(entries) != len(dynamic):
            raise ValueError(
                f"nnx.jit: in_shardings has {len(entries)} entries but the function was called with "
                f"{len(dynamic)} non-static positional arguments; give one per argument (a module's "
                "entry applies to its state), or one sharding for all."
            )
    else:
        entries = [given] * len(dynamic)
    per_arg: dict[int, Any] = dict(zip(dynamic, entries))
    root_specs: list[Any] = []
    dyn: list[Any] = []
    for j, pattern in enumerate(patterns):
        spec = per_arg.get(j)
        if pattern is NODE:
            root_specs.append(spec)
            dyn.append(None)
        elif isinstance(pattern, Mixed):
            leaves = _prefix_leaves(spec, pattern)
            root_specs.extend(leaves[p] for p in pattern.positions)
            dyn.append([None if p in pattern.positions else s for p, s in enumerate(leaves)])
        else:
            dyn.append(spec)
    return (_state_shardings(framedef, root_specs), *dyn)


def _prefix_leaves(spec: Any, pattern: Mixed) -> list[Any]:
    """One sharding per leaf of a pytree argument holding modules, from a prefix ``spec``."""
    shape = tree_unflatten(pattern.treedef, [0] * pattern.treedef.num_leaves)
    return broadcast_prefix(spec, shape, "nnx.jit: in_shardings")


def _state_shardings(framedef: FrameDef, root_specs: list[Any]) -> list[Any]:
    """One sharding per state leaf: its root argument's sharding, or its entry in a State."""
    flat: dict[int, dict[Any, Any]] = {}
    out: list[Any] = []
    layout = framedef.graphdef.layout
    for path, kind in zip(layout.paths, layout.kinds):
        root = int(path[0])
        spec = root_specs[root] if root < len(root_specs) else None
        if isinstance(spec, State):
            by_path = flat.get(root)
            if by_path is None:
                by_path = flat[root] = cast("dict[Any, Any]", spec.flat_state())
            spec = by_path.get(tuple(path[1:]))
            if isinstance(spec, Variable):  # States of shardings keep their leaves' kinds
                spec = spec._value
        elif isinstance(spec, StateAxes):  # nnx.StateSharding({filter: sharding})
            spec = filtered_spec(spec, tuple(path[1:]), kind, "nnx.jit: in_shardings")
        out.append(spec)
    return out


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
