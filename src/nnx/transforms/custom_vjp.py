"""``nnx.custom_vjp``: a hand-written gradient for a function of modules.

As with ``jax.custom_vjp``, you give the function, a forward rule that
returns its output and residuals, and a backward rule that maps the output's
cotangent to the inputs' cotangents::

    @nnx.custom_vjp
    def f(m: Foo) -> jax.Array:
        return jnp.sin(m.x.value) * m.y.value

    def f_fwd(m: Foo):
        return f(m), (jnp.cos(m.x.value), jnp.sin(m.x.value), m)

    def f_bwd(res, g):
        cos_x, sin_x, m = res
        (m_updates_g,), out_g = g
        return (nnx.State({"x": cos_x * out_g * m.y.value, "y": sin_x * out_g}),)

    f.defvjp(f_fwd, f_bwd)
    grads = nnx.grad(f)(m)

What the rules see:

* the forward rule is called like ``f``, on the same modules (whatever it
  changes in them lands on the caller's, as with every transform); its
  residuals may hold modules;
* the backward rule gets the arguments listed in ``nondiff_argnums`` first
  (as in ``jax.custom_vjp``), then the residuals, then ``g = (inputs_g, out_g)``:
  ``out_g`` is the output's cotangent and ``inputs_g`` holds, per
  differentiated argument, the cotangent of the state the function wrote back
  into it -- a ``State`` for a module, ``None`` for an array;
* it returns one cotangent per differentiated argument: a ``State`` (or nested
  dict) with entries at the module's paths for a module -- a path left out is
  a zero cotangent -- and a pytree like the argument for an array.

Arguments in ``nondiff_argnums`` get no cotangent; non-array ones (ints,
strings) are static. A module argument may not be a pytree holding modules
(pass the modules as separate arguments).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar, cast, overload

import jax
import jax.numpy as jnp
import numpy as np
from typing_extensions import ParamSpec

from nnx.modes import tree_for
from nnx.state import State
from nnx.transforms.lift import DYN, NODE, STATIC, Frame, FrameDef, Landing, Mixed
from nnx.variables import Variable

P = ParamSpec("P")
R = TypeVar("R")


class _Packed:
    """Residuals as a pytree: their graph (static) and leaf values."""

    __slots__ = ("framedef", "values", "dyn")

    def __init__(self, framedef: FrameDef, values: list[Any], dyn: list[Any]) -> None:
        self.framedef = framedef
        self.values = values
        self.dyn = dyn


jax.tree_util.register_pytree_node(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    _Packed,
    lambda p: ((p.values, p.dyn), p.framedef),
    lambda framedef, children: _Packed(framedef, list(children[0]), list(children[1])),
)


def _pack(res: Any) -> _Packed:
    frame, dyn = Frame.of((res,), {})
    return _Packed(frame.framedef, frame.values(), dyn)


def _unpack(packed: _Packed) -> Any:
    args, _, _ = packed.framedef.enter(packed.values, packed.dyn)
    return args[0]


def _zero(x: Any) -> Any:
    """The zero cotangent of a primal leaf (``float0`` for integers and keys)."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None and (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.complexfloating)):
        return jnp.zeros_like(x)
    return np.zeros(np.shape(x), dtype=jax.dtypes.float0)


def _zeros(tree: Any) -> Any:
    return jax.tree_util.tree_map(_zero, tree)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return not isinstance(value, (jax.Array, np.ndarray, Variable))


class CustomVjp(Generic[P, R]):
    """A function with a custom gradient; ``defvjp(fwd, bwd)`` before calling it."""

    def __init__(self, fun: Callable[P, R], nondiff_argnums: tuple[int, ...], tree: str | None = None) -> None:
        if inspect.ismethod(fun):
            raise TypeError(
                "nnx.custom_vjp: got a bound method; decorate the function (or the method in the class "
                "body) so that the module is an argument whose gradient the rules can give."
            )
        functools.update_wrapper(self, fun)  # first: it copies fun.__dict__ into ours
        self._fun = fun
        self._nondiff = frozenset(nondiff_argnums)
        self._tree = tree
        self._fwd: Callable[..., Any] | None = None
        self._bwd: Callable[..., Any] | None = None

    def defvjp(self, fwd: Callable[P, tuple[R, Any]], bwd: Callable[..., Any]) -> None:
        """Set the forward rule (called like the function, returns ``(output, residuals)``)
        and the backward rule (``bwd(*nondiff_args, residuals, (inputs_g, out_g))``)."""
        self._fwd = fwd
        self._bwd = bwd

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._fwd is None or self._bwd is None:
            raise TypeError(f"nnx.custom_vjp: call {self._fun.__name__}.defvjp(fwd, bwd) before calling it.")
        if kwargs:
            raise TypeError("nnx.custom_vjp: pass the arguments by position (as jax.custom_vjp needs).")
        nondiff = self._nondiff
        frame, dyn = Frame.of(args, kwargs, static=lambda k: k in nondiff and _hashable(args[int(k)]), tree=self._tree)
        for k, pattern in enumerate(frame.framedef.patterns):
            if isinstance(pattern, Mixed):
                raise TypeError(
                    f"nnx.custom_vjp: argument {k} is a pytree holding modules ({type(args[k]).__name__}); "
                    "pass the modules as separate arguments."
                )
        rule = _Rule(self, frame)
        landing, new, out = rule.call(frame.values(), dyn)
        result: R = frame.land(landing, new, out)
        return result


Pure = Callable[[list[Any], list[Any]], tuple[Landing, list[Any], Any]]


def _jax_custom_vjp(primal: Pure, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> Pure:
    """``jax.custom_vjp(primal)`` with ``fwd``/``bwd``, typed as ``primal``."""
    made: Any = jax.custom_vjp(primal)  # pyright: ignore[reportUnknownVariableType]  # jax: generic in an unsolved type
    made.defvjp(fwd, bwd)
    return cast(Pure, made)


class _Rule:
    """One call's ``jax.custom_vjp``: the function, its forward and backward rules over
    ``(leaf values, dyn args)``, and where each differentiated argument's leaves are."""

    def __init__(self, owner: CustomVjp[Any, Any], frame: Frame) -> None:
        self.owner = owner
        self.framedef = frame.framedef
        paths = frame.framedef.graphdef.layout.paths
        # leaves per argument: (index in the frame's leaves, path inside the argument)
        self.leaves_of: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
        for i, path in enumerate(paths):
            arg = frame.owners[int(path[0])]
            self.leaves_of.setdefault(arg, []).append((i, tuple(path[1:])))
        patterns = frame.framedef.patterns
        self.diff = [k for k in range(len(patterns)) if k not in owner._nondiff]
        self.call = _jax_custom_vjp(self._primal, self._forward, self._backward)

    def _primal(self, values: list[Any], dyn: list[Any]) -> tuple[Landing, list[Any], Any]:
        args, kwargs, entered = self.framedef.enter(values, dyn)
        out = self.owner._fun(*args, **kwargs)
        return self.framedef.leave(entered, out, where="nnx.custom_vjp", forward=False)

    def _forward(self, values: list[Any], dyn: list[Any]) -> tuple[Any, Any]:
        assert self.owner._fwd is not None
        args, kwargs, entered = self.framedef.enter(values, dyn)
        pair: Any = self.owner._fwd(*args, **kwargs)
        if not (isinstance(pair, tuple) and len(pair) == 2):  # pyright: ignore[reportUnknownArgumentType]  # Any narrowed
            raise TypeError("nnx.custom_vjp: the forward rule must return a pair (output, residuals).")
        out: Any = pair[0]  # pyright: ignore[reportUnknownVariableType]  # narrowed to tuple[Unknown, ...]
        res: Any = pair[1]  # pyright: ignore[reportUnknownVariableType]
        result = self.framedef.leave(entered, out, where="nnx.custom_vjp", forward=False)
        return result, (_pack(res), values, dyn)

    def _backward(self, saved: tuple[_Packed, list[Any], list[Any]], g: Any) -> tuple[list[Any], list[Any]]:
        assert self.owner._bwd is not None
        packed, values, dyn = saved
        _, new_g, out_g = g
        args, _, _ = self.framedef.enter(values, dyn)
        nondiff_args = [args[k] for k in sorted(self.owner._nondiff) if k < len(args)]
        inputs_g = tuple(self._state_of(k, new_g) if self.framedef.patterns[k] is NODE else None for k in self.diff)
        returned: Any = self.owner._bwd(*nondiff_args, _unpack(packed), (inputs_g, out_g))
        if not isinstance(returned, (tuple, list)) or len(returned) != len(self.diff):  # pyright: ignore[reportUnknownArgumentType]
            raise TypeError(
                f"nnx.custom_vjp: the backward rule must return a tuple with one cotangent per "
                f"differentiated argument ({len(self.diff)}: arguments {self.diff}); got {type(cast(object, returned)).__name__}."
            )
        values_ct: list[Any] = [_zero(v) for v in values]
        dyn_ct: list[Any] = [None if p is STATIC or p is NODE else _zeros(d) for p, d in zip(self.framedef.patterns, dyn)]
        for k, ct in zip(self.diff, returned):  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
            pattern = self.framedef.patterns[k]
            if pattern is DYN:
                dyn_ct[k] = ct
            elif pattern is NODE:
                self._scatter(k, ct, values, values_ct)
        return values_ct, dyn_ct

    def _state_of(self, k: int, leaves: Sequence[Any]) -> State[Any]:
        """The cotangents at argument ``k``'s leaves, as a State with its paths."""
        return State.from_flat_state({path: leaves[i] for i, path in self.leaves_of.get(k, [])})

    def _scatter(self, k: int, ct: Any, values: list[Any], values_ct: list[Any]) -> None:
        """Put a module argument's returned cotangents at its leaves."""
        if ct is None:
            return
        state = _as_state(ct)
        at = {path: i for i, path in self.leaves_of.get(k, [])}
        for path, leaf in zip(state.paths, state.leaves):
            i = at.get(tuple(path))
            if i is None:
                raise ValueError(
                    f"nnx.custom_vjp: the backward rule returned a cotangent at '{'.'.join(map(str, path))}' "
                    f"for argument {k}, which has no state there; its paths: {sorted(at)}."
                )
            values_ct[i] = jnp.asarray(leaf, dtype=getattr(values[i], "dtype", None))


def _as_state(ct: object) -> State[Any]:
    """A returned cotangent for a module: a State, or a nested mapping of its paths."""
    if isinstance(ct, State):
        return ct  # pyright: ignore[reportUnknownVariableType]  # narrowed to State[Unknown]
    if isinstance(ct, Mapping):
        return State(ct)  # pyright: ignore[reportUnknownArgumentType]  # narrowed to Mapping[Unknown, Unknown]
    raise TypeError(
        f"nnx.custom_vjp: the backward rule returned {type(ct).__name__} as a module's cotangent; "
        "return an nnx.State (or a nested dict) with entries at the module's paths."
    )


@overload
def custom_vjp(
    fun: Callable[P, R], /, *, nondiff_argnums: tuple[int, ...] = (), graph: bool | None = None, graph_updates: bool | None = None
) -> CustomVjp[P, R]: ...
@overload
def custom_vjp(
    fun: None = None, /, *, nondiff_argnums: tuple[int, ...] = (), graph: bool | None = None, graph_updates: bool | None = None
) -> Callable[[Callable[P, R]], CustomVjp[P, R]]: ...
def custom_vjp(
    fun: Callable[P, R] | None = None,
    /,
    *,
    nondiff_argnums: tuple[int, ...] = (),
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> CustomVjp[P, R] | Callable[[Callable[P, R]], CustomVjp[P, R]]:
    """``jax.custom_vjp`` for functions of modules (see the module docstring for the rules'
    protocol, which is Flax's graph-updates one). ``graph=False`` (tree mode, ``nnx.modes``):
    the arguments may share nothing."""
    tree = tree_for("nnx.custom_vjp", graph, graph_updates)
    if fun is None:
        return lambda f: CustomVjp(f, tuple(nondiff_argnums), tree)
    return CustomVjp(fun, tuple(nondiff_argnums), tree)
