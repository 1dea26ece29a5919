"""The seeds' older idioms, as thin aliases over the core, all in one place.

* seed 000: ``Module.init(key)(*args)`` with ``self.make_rng("params")`` inside
  ``__init__``; ``model["params"]`` to read and ``model["params"] = state`` to
  write a collection; ``model.apply(use_running_average=False)(x)`` to call
  with flags set on every submodule for that call only.
* seed 003 (nnx 0.0.8): ``nnx.context(0)`` / ``ctx.make_rng("params")``;
  ``model.partition(*filters) -> (states, moduledef)``; ``moduledef.merge`` and
  ``moduledef.apply(*states)(x) -> (y, (state, moduledef))`` (also
  ``.apply(...).method(x)`` and ``.apply(...).submodule(x)``);
  ``model.filter``, ``model.update_state``, ``model.pop_state``; ``nnx.Node``.

The modern spelling of each is ``nnx.Rngs``, ``nnx.split``/``merge``/``state``/
``update``/``pop`` and ``model.train()``/``eval()``.

The library's layers take all three ways of passing randomness through one
resolver, ``layer_rngs``: ``rngs=`` (modern), ``ctx=`` (seed 003; a ``Context``
is an ``Rngs``), or nothing inside ``Module.init(key)(...)`` (seed 000). At call
time ``call_flag`` reads a flag from the argument, from ``ctx``'s flags, or from
the layer's attribute (what ``model.train()``/``eval()`` and
``model.apply(flag=...)`` set), in that order.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any, Callable, Generic, Mapping, TypeVar, cast, overload

from typing_extensions import Self

import jax

from nnx import graph
from nnx.filters import Filter
from nnx.graphdef import GraphDef
from nnx.module import ModuleBase
from nnx.rngs import Rngs, RngStream, Seed
from nnx.state import State
from nnx.variables import Variable

M = TypeVar("M", bound="Module")
T = TypeVar("T")
P = TypeVar("P")  # what a Partition holds first: a State or a tuple of States
D = TypeVar("D", bound="Module")  # the module type of a Partition's ModuleDef

_init_rngs: contextvars.ContextVar[Rngs | None] = contextvars.ContextVar("nnx_init_rngs", default=None)


@overload
def layer_rngs(layer: str, rngs: Rngs | None, ctx: Rngs | None) -> Rngs: ...
@overload
def layer_rngs(layer: str, rngs: Rngs | None, ctx: Rngs | None, *, required: bool) -> Rngs | None: ...
def layer_rngs(layer: str, rngs: Rngs | None, ctx: Rngs | None, *, required: bool = True) -> Rngs | None:
    """The RNG streams a layer's constructor was given, whichever way it was given.

    ``rngs=`` and ``ctx=`` are the same thing spelled by two generations of the
    API (``Context`` is an ``Rngs``); with neither, the streams of an enclosing
    ``Module.init(key)(...)``. A layer that draws keys (``required``) and got
    none raises, naming the three ways.
    """
    if rngs is not None and ctx is not None:
        raise TypeError(f"{layer}: pass rngs= or ctx= (the same streams, two spellings), not both.")
    found = rngs if rngs is not None else ctx if ctx is not None else _init_rngs.get()
    if found is None and required:
        raise TypeError(
            f"{layer} draws random keys to initialise its parameters but was given none. Pass "
            f"rngs=nnx.Rngs(0), or ctx=nnx.context(0) (nnx 0.0.8), or build the model inside "
            f"Module.init(key)(...) (e.g. Model.init(jax.random.key(0))(...))."
        )
    return found


def forked_stream(rngs: Rngs | RngStream | None, name: str) -> RngStream | None:
    """What a layer that draws keys when called (Dropout, attention dropout) holds, as in
    Flax: its own ``RngStream`` ``name``, seeded by one key drawn from the caller's stream
    ``name`` (or ``default``), so using it never advances the caller's streams. ``None``
    when the caller has no such stream: keys must then come at call time."""
    if isinstance(rngs, RngStream):
        return rngs.fork()
    if rngs is None or not ({name, "default"} & set(rngs.names())):
        return None
    return rngs.stream(name).fork()


KeySource = Rngs | RngStream | jax.Array


def call_rngs(rngs: KeySource | None, ctx: Rngs | None, own: RngStream | None) -> KeySource | None:
    """Where a layer draws keys from when called: ``rngs=`` (an ``Rngs``, a stream or a
    key) or ``ctx=`` given to the call, else the layer's own stream."""
    if rngs is not None:
        return rngs
    if ctx is not None and ctx.names():
        return ctx
    return own


def draw_key(source: KeySource, name: str, layer: str) -> jax.Array:
    """One key from ``source``: the stream ``name`` of an ``Rngs`` (or its ``default``),
    the next key of a stream, or a key given as is."""
    if isinstance(source, Rngs):
        return source.stream(name)()
    if isinstance(source, RngStream):
        return source()
    if isinstance(source, jax.Array):  # pyright: ignore[reportUnnecessaryIsInstance]  # checked for callers without types
        return source
    raise TypeError(
        f"{layer}: rngs={source!r} is not random keys; pass an nnx.Rngs, an nnx.RngStream or a jax.random.key."
    )


def call_flag(name: str, given: bool | None, ctx: Rngs | None, attribute: bool) -> bool:
    """A call-time flag: the argument, else ``ctx``'s ``flags=`` entry (seed 003), else the
    layer's attribute (set by ``model.train()``/``eval()``/``model.apply(...)``)."""
    if given is not None:
        return given
    if isinstance(ctx, Context):
        flag = ctx.get_flag(name)
        if flag is not None:
            return bool(flag)
    return attribute


class Node(Variable[T], collection="nodes"):
    """Seed 003: marks an arbitrary value (e.g. a list) as state rather than static."""

    __slots__ = ()


class Module(ModuleBase):
    """Base class for your modules. See ``ModuleBase`` for the core behaviour."""

    @classmethod
    def init(cls: type[M], rngs: Seed | Rngs | Mapping[str, Seed]) -> Callable[..., M]:
        """Seed 000: ``Linear.init(key)(12, 2)``; ``self.make_rng("params")`` works in ``__init__``."""
        if not isinstance(rngs, Rngs):
            rngs = Rngs(rngs) if isinstance(rngs, Mapping) else Rngs(params=rngs)
        bound: Rngs = rngs

        def construct(*args: Any, **kwargs: Any) -> M:
            token = _init_rngs.set(bound)
            try:
                return cls(*args, **kwargs)
            finally:
                _init_rngs.reset(token)

        return construct

    def make_rng(self, name: str = "params") -> jax.Array:
        """Seed 000: a key from stream ``name`` while ``Module.init(key)(...)`` runs."""
        rngs = _init_rngs.get()
        if rngs is None:
            raise RuntimeError(
                f"{type(self).__name__}.make_rng({name!r}) was called outside Module.init(key)(...). "
                "Pass `rngs: nnx.Rngs` to __init__ and call rngs.params() instead, or construct "
                f"with {type(self).__name__}.init(key)(...)."
            )
        return rngs.stream(name)()

    def __getitem__(self, collection: Filter) -> State[Any]:
        """Seed 000: ``model["params"]`` is ``nnx.state(model, "params")``."""
        return graph.state(self, collection)

    def __setitem__(self, collection: Filter, state: State[Any]) -> None:
        """Seed 000: ``model["params"] = new_params`` is ``nnx.update(model, new_params)``."""
        graph.update(self, state)

    def apply(self, **flags: Any) -> Callable[..., Any]:
        """Seed 000: ``model.apply(use_running_average=False)(x)`` calls the model with
        ``flags`` set on every submodule that has them, restoring them afterwards."""

        def call(*args: Any, **kwargs: Any) -> Any:
            saved: list[tuple[ModuleBase, str, Any]] = []
            for _, module in self.iter_modules():
                for name, value in flags.items():
                    if name in vars(module):
                        saved.append((module, name, getattr(module, name)))
                        setattr(module, name, value)
            unused = sorted(set(flags) - {name for _, name, _ in saved})
            if unused:
                for module, name, old in saved:
                    setattr(module, name, old)
                raise AttributeError(f"{type(self).__name__}.apply: no submodule has flag(s) {unused}.")
            try:
                return cast("Callable[..., Any]", self)(*args, **kwargs)  # subclasses define __call__
            finally:
                for module, name, old in reversed(saved):
                    setattr(module, name, old)

        return call

    # One overload per arity (0 to 4 filters) so that unpacking checks, as for nnx.split.
    @overload
    def partition(self) -> Partition[State[Self], Self]: ...
    @overload
    def partition(self, f1: Filter, /) -> Partition[State[Self], Self]: ...
    @overload
    def partition(self, f1: Filter, f2: Filter, /) -> Partition[tuple[State[Self], State[Self]], Self]: ...
    @overload
    def partition(
        self, f1: Filter, f2: Filter, f3: Filter, /
    ) -> Partition[tuple[State[Self], State[Self], State[Self]], Self]: ...
    @overload
    def partition(
        self, f1: Filter, f2: Filter, f3: Filter, f4: Filter, /
    ) -> Partition[tuple[State[Self], State[Self], State[Self], State[Self]], Self]: ...
    @overload
    def partition(self, *filters: Filter) -> Partition[Any, Self]: ...
    def partition(self, *filters: Filter) -> Partition[Any, Self]:
        """Seed 003: ``state, moduledef = model.partition()`` and
        ``(params, rest), moduledef = model.partition(nnx.Param, ...)``."""
        graphdef, *states = graph.split(self, *filters)
        moduledef = ModuleDef(graphdef)
        return Partition(states[0] if len(states) == 1 else tuple(states), moduledef)

    @overload
    def filter(self, f1: Filter, /) -> State[Self]: ...  # pyright: ignore[reportOverlappingOverload]  # first match wins
    @overload
    def filter(self, f1: Filter, f2: Filter, /) -> tuple[State[Self], State[Self]]: ...
    @overload
    def filter(self, f1: Filter, f2: Filter, f3: Filter, /) -> tuple[State[Self], State[Self], State[Self]]: ...
    @overload
    def filter(self, *filters: Filter) -> tuple[State[Self], ...]: ...
    def filter(self, *filters: Filter) -> Any:
        """Seed 003: ``model.filter(nnx.Param)`` is ``nnx.state(model, nnx.Param)``."""
        return graph.state(self, *filters)

    def update_state(self, *states: State[Any]) -> None:
        """Seed 003: ``model.update_state(state)`` is ``nnx.update(model, state)``."""
        graph.update(self, *states)

    @overload
    def pop_state(self, f1: Filter, /) -> State[Self]: ...  # pyright: ignore[reportOverlappingOverload]  # first match wins
    @overload
    def pop_state(self, f1: Filter, f2: Filter, /) -> tuple[State[Self], State[Self]]: ...
    @overload
    def pop_state(self, f1: Filter, f2: Filter, f3: Filter, /) -> tuple[State[Self], State[Self], State[Self]]: ...
    @overload
    def pop_state(self, *filters: Filter) -> tuple[State[Self], ...]: ...
    def pop_state(self, *filters: Filter) -> Any:
        """Seed 003: ``model.pop_state(nnx.Intermediate)`` is ``nnx.pop(model, nnx.Intermediate)``."""
        return graph.pop(self, *filters)


class ModuleDef(GraphDef[M]):
    """Seed 003's name for a GraphDef, with ``merge`` and ``apply`` methods."""

    __slots__ = ()

    def __init__(self, graphdef: GraphDef[M]) -> None:
        super().__init__(graphdef.node, graphdef.layout)

    def merge(self, *states: State[Any]) -> M:
        """``moduledef.merge(params, rest)`` is ``nnx.merge(moduledef, params, rest)``."""
        if not states:
            raise TypeError("ModuleDef.merge needs the State(s) from partition().")
        return graph.merge(self, *states)

    def apply(self, *states: State[Any]) -> Apply:
        """``moduledef.apply(*states)(x)`` -> ``(y, (state, moduledef))``; also
        ``.apply(...).method(x)`` and ``.apply(...).submodule(x)``."""
        return Apply(self, states, ())


class Apply:
    """The callable returned by ``ModuleDef.apply``: reach a method or submodule, then call."""

    def __init__(self, moduledef: ModuleDef[Any], states: tuple[State[Any], ...], path: tuple[Any, ...]) -> None:
        self._moduledef = moduledef
        self._states = states
        self._path = path

    def __getattr__(self, name: str) -> Apply:
        if name.startswith("__"):
            raise AttributeError(name)
        return Apply(self._moduledef, self._states, (*self._path, ("attr", name)))

    def __getitem__(self, key: Any) -> Apply:
        return Apply(self._moduledef, self._states, (*self._path, ("item", key)))

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[Any, tuple[State[Any], ModuleDef[Any]]]:
        module = self._moduledef.merge(*self._states)
        target: Any = module
        for how, key in self._path:
            target = getattr(target, key) if how == "attr" else target[key]
        out = target(*args, **kwargs)
        graphdef, state = graph.split(module)
        return out, (state, ModuleDef(graphdef))


class Partition(tuple[P, "ModuleDef[D]"], Generic[P, D]):
    """``(states, moduledef)`` from ``Module.partition``; a pytree, and ``.merge()`` rebuilds."""

    def __new__(cls, states: P, moduledef: ModuleDef[D]) -> Partition[P, D]:
        return super().__new__(cls, (states, moduledef))

    if not TYPE_CHECKING:  # a plain tuple subscript at run time; checkers use Generic's

        def __class_getitem__(cls, item: Any) -> Any:
            return cls

    def merge(self) -> D:
        """Rebuild the module (seed 003's ``jax.vmap(... .partition())(keys).merge()``)."""
        states: Any = self[0]
        parts: tuple[State[Any], ...] = states if isinstance(states, tuple) else (states,)  # pyright: ignore[reportUnknownVariableType]  # Any narrowed to tuple[Unknown, ...]
        return self[1].merge(*parts)


def _flatten_partition(p: Partition[Any, Any]) -> tuple[tuple[Any], ModuleDef[Any]]:
    return (p[0],), p[1]


def _unflatten_partition(moduledef: ModuleDef[Any], children: tuple[Any, ...]) -> Partition[Any, Any]:
    return Partition(children[0], moduledef)


jax.tree_util.register_pytree_node(ModuleDef, lambda g: ((), g), lambda g, _: g)  # pyright: ignore[reportUnknownMemberType]
jax.tree_util.register_pytree_node(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    Partition, _flatten_partition, _unflatten_partition
)


class Context(Rngs):
    """Seed 003's ``nnx.Context``: RNG streams plus ``make_rng`` and call flags."""

    def make_rng(self, name: str = "params") -> jax.Array:
        """A key from stream ``name`` (falling back to ``default``)."""
        return self.stream(name)()

    def get_flag(self, name: str, default: Any = None) -> Any:
        """The flag ``name`` given to ``nnx.context(flags=...)``."""
        flags: Mapping[str, Any] = self.__dict__.get("flags") or {}
        return flags.get(name, default)


def context(
    default: Seed | None = None, /, *, flags: Mapping[str, Any] | None = None, **streams: Seed
) -> Context:
    """Seed 003: ``nnx.context(0)``, ``nnx.context(params=key, dropout=key2)``, ``flags=``."""
    ctx = object.__new__(Context)
    if default is None and not streams:
        if flags is None:
            raise TypeError("nnx.context needs a seed, named streams, or flags.")
    else:
        Rngs.__init__(ctx, default, **streams)
    if flags is not None:
        setattr(ctx, "flags", dict(flags))  # call flags are not a declared attribute of Context
    return ctx
