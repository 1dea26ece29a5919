"""Split and merge several graphs as one, and land changes made inside a JAX
transform on the caller's own objects: Flax's ``split_context``,
``merge_context`` and ``update_context``.

``nnx.split`` describes each call's graph on its own: splitting a module and
then a submodule of it gives two independent descriptions, and merging them
gives two copies. Inside ``with nnx.split_context() as ctx`` successive
``ctx.split`` calls are walked as one graph: a node already described by an
earlier call is described as a reference to it (an empty State), and inside
``with nnx.merge_context() as ctx`` successive ``ctx.merge`` calls resolve such
references to the objects built earlier. Identity survives the round trip.

``nnx.update_context(tag)`` carries that across a transform boundary, in four
steps that name the same tag::

    with nnx.update_context("f"):
        with nnx.split_context("f") as ctx:           # (1) outside: remember the objects
            pure = ctx.split(model)

        @jax.jit
        def f(pure):
            with nnx.merge_context("f", True) as ctx:  # (2) inside: build copies
                m = ctx.merge(*pure)
            m.count = ...                            #     change values or structure
            with nnx.split_context("f") as ctx:       # (3) inside: link copies to (1)
                return ctx.split(m)

        out = f(pure)
        with nnx.merge_context("f", False) as ctx:     # (4) outside: update in place
            model = ctx.merge(*out)                  #     the very same object

Step (3) records, in the GraphDef it returns, which of its nodes are copies of
which objects of step (1) (a ``LinkedGraphDef``: static data, so it survives
``jax.jit``'s cache). Step (4) rebuilds those objects and cells in place and
creates only what the function added; this is how nnx's own transforms land
structural changes (``nnx.graph.build_node`` with objects to reuse).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Generator, Hashable, ParamSpec, TypeVar, overload

import jax

from nnx import epoch
from nnx.filters import Filter
from nnx.graph import build_node, walk_nodes
from nnx.graphdef import GraphDef
from nnx.roots import PLAIN, tracked
from nnx.state import Layout, State, path_str

N = TypeVar("N")
R = TypeVar("R")
P = ParamSpec("P")


class LinkedGraphDef(GraphDef[N]):
    """A GraphDef made by an inner ``ctx.split`` (step 3 of ``update_context``): it also
    records which of its nodes are copies of the caller's objects, as
    ``(node index here, node index in the outer split)`` pairs. Merged without a
    context it is an ordinary GraphDef."""

    __slots__ = ("links",)

    def __init__(self, graphdef: GraphDef[N], links: tuple[tuple[int, int], ...]) -> None:
        super().__init__(graphdef.node, graphdef.layout, graphdef.avals)
        self.links = links

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LinkedGraphDef) and other.links == self.links and super().__eq__(other)  # pyright: ignore[reportUnknownArgumentType]

    def __hash__(self) -> int:
        h = self._hash
        if h is None:  # hashed on first use, as GraphDef is
            h = self._hash = hash((self.node, self.links))
        return h


jax.tree_util.register_pytree_node(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    LinkedGraphDef,
    lambda g: ((), g),
    lambda g, _: g,
)


class UpdateContext:
    """The bookkeeping of one ``update_context`` block (see the module docstring)."""

    __slots__ = ("tag", "outer_nodes", "inner_index", "_inner_alive")

    def __init__(self, tag: Hashable) -> None:
        self.tag = tag
        #: Step (1): the caller's nodes, by node index of the joint outer split.
        self.outer_nodes: list[Any] | None = None
        #: Step (2): id of each object built inside -> its outer node index.
        self.inner_index: dict[int, int] | None = None
        self._inner_alive: list[Any] = []  # keeps those ids from being reused

    def __repr__(self) -> str:
        return f"UpdateContext(tag={self.tag!r})"


_STACKS: ContextVar[dict[Hashable, tuple[UpdateContext, ...]] | None] = ContextVar("nnx_update_contexts", default=None)


class _UpdateContextManager:
    """``update_context(tag)``: a ``with`` block, or a decorator that opens one per call."""

    __slots__ = ("tag",)

    def __init__(self, tag: Hashable) -> None:
        self.tag = tag

    def __enter__(self) -> UpdateContext:
        ctx = UpdateContext(self.tag)
        stacks = dict(_STACKS.get() or {})
        stacks[self.tag] = (*stacks.get(self.tag, ()), ctx)
        _STACKS.set(stacks)
        return ctx

    def __exit__(self, *exc: object) -> None:
        stacks = dict(_STACKS.get() or {})
        remaining = stacks[self.tag][:-1]
        if remaining:
            stacks[self.tag] = remaining
        else:
            del stacks[self.tag]
        _STACKS.set(stacks)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return fn(*args, **kwargs)

        wrapped.__wrapped__ = fn  # type: ignore[attr-defined]  # pyright: ignore[reportFunctionMemberAccess]
        return wrapped


def update_context(tag: Hashable) -> _UpdateContextManager:
    """Open an ``UpdateContext`` for ``tag`` (a ``with`` block or a function decorator):
    the ``split_context(tag)`` / ``merge_context(tag, inner)`` calls inside it land
    what a transform did on the caller's objects. See the module docstring."""
    return _UpdateContextManager(tag)


def current_update_context(tag: Hashable) -> UpdateContext:
    """The innermost open ``update_context(tag)``; ``ValueError`` if there is none."""
    stack = (_STACKS.get() or {}).get(tag)
    if not stack:
        raise ValueError(
            f"No update context found for tag {tag!r}: open one first, "
            f"with nnx.update_context({tag!r}): ..., around the split_context/merge_context calls."
        )
    return stack[-1]


# -- split ---------------------------------------------------------------------


class SplitContext:
    """Successive ``split`` calls walked as one graph (see ``split_context``)."""

    __slots__ = ("tag", "_roots", "_nodes", "_update", "_inner")

    def __init__(self, tag: Hashable | None, update: UpdateContext | None) -> None:
        self.tag = tag
        self._roots: list[Any] = []
        self._nodes: list[Any] = []
        self._update = update
        # An outer split has been made in this update context: this one is step (3).
        self._inner = update is not None and update.outer_nodes is not None

    @overload
    def split(self, node: N, /) -> tuple[GraphDef[N], State[N]]: ...
    @overload
    def split(self, node: N, f1: Filter, /) -> tuple[GraphDef[N], State[N]]: ...
    @overload
    def split(self, node: N, f1: Filter, f2: Filter, /) -> tuple[GraphDef[N], State[N], State[N]]: ...
    @overload
    def split(self, node: object, f1: Filter, f2: Filter, f3: Filter, /, *rest: Filter) -> tuple[Any, ...]: ...
    def split(self, node: Any, /, *filters: Filter) -> tuple[Any, ...]:
        """``nnx.split(node, *filters)``, except that nodes an earlier ``split`` of this
        context described are references to that description (and hold no state)."""
        if type(node) in PLAIN:
            node = tracked(node)
        position = len(self._roots)
        graphdef, cells, nodes = walk_nodes((*self._roots, node))
        self._roots.append(node)
        self._nodes = nodes
        described = graphdef.node[1][position] if graphdef.node[0] == "tuple" else graphdef.node
        values = [c._value for c in cells]
        layout = graphdef.layout
        entry = layout.children().get(position)
        if isinstance(entry, int):
            raise TypeError(
                f"split_context: root {position} is a {type(node).__name__}, not a graph node; "
                "split Modules, nnx.List/nnx.Dict (or lists/dicts of them) or Variables inside them."
            )
        start, stop = entry if entry is not None else (len(values), len(values))
        mine = layout.sub(position, start, stop) if entry is not None else Layout((), (), ())
        avals = graphdef.avals[start:stop] if graphdef.avals is not None else None
        own: GraphDef[Any] = GraphDef(described, mine, avals)
        if self._inner:
            own = LinkedGraphDef(own, self._links(nodes))
        state: State[Any] = State._make(mine, values[start:stop])
        parts = state.split(*filters) if filters else state
        return (own, *parts) if isinstance(parts, tuple) else (own, parts)

    def _links(self, nodes: list[Any]) -> tuple[tuple[int, int], ...]:
        """(index here, outer index) for every node built by step (2)."""
        assert self._update is not None
        index = self._update.inner_index or {}
        return tuple((i, index[id(n)]) for i, n in enumerate(nodes) if id(n) in index)


@contextmanager
def split_context(ctxtag: Hashable | None = None) -> Generator[SplitContext, None, None]:
    """A context whose ``ctx.split`` calls share one graph walk (see the module docstring).
    With ``ctxtag``, the splits are steps (1) or (3) of ``update_context(ctxtag)``."""
    update = current_update_context(ctxtag) if ctxtag is not None else None
    ctx = SplitContext(ctxtag, update)
    try:
        yield ctx
    finally:
        if update is not None:
            if ctx._inner:  # step (3) done: the copies are linked
                update.inner_index, update._inner_alive = None, []
            else:  # step (1): remember the caller's objects for step (4)
                update.outer_nodes = ctx._nodes
        ctx._roots, ctx._nodes = [], []


# -- merge ---------------------------------------------------------------------


class MergeContext:
    """Successive ``merge`` calls that resolve references to one another (see ``merge_context``)."""

    __slots__ = ("tag", "inner", "_built", "_update")

    def __init__(self, tag: Hashable | None, inner: bool | None, update: UpdateContext | None) -> None:
        self.tag = tag
        self.inner = inner
        self._built: dict[int, Any] = {}
        self._update = update

    def merge(self, graphdef: GraphDef[N], state: State[Any], /, *states: State[Any]) -> N:
        """``nnx.merge(graphdef, state, *states)``, except that references to nodes an
        earlier ``merge`` of this context built resolve to those objects; in step (4)
        of an update context, linked nodes are the caller's objects, updated in place."""
        if not isinstance(graphdef, GraphDef):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
            raise TypeError(f"merge_context: ctx.merge takes a GraphDef first, got {type(graphdef).__name__}.")
        leaves = _gather(graphdef, (state, *states))
        reuse: dict[int, Any] | None = None
        if self._update is not None and self.inner is False and isinstance(graphdef, LinkedGraphDef):
            outer = self._update.outer_nodes
            if outer is None:
                raise ValueError(
                    f"merge_context({self.tag!r}, False): no outer split_context({self.tag!r}) recorded "
                    "the objects to update; split them in this update_context before the transform."
                )
            if any(j >= len(outer) for _, j in graphdef.links):
                raise ValueError(
                    f"merge_context({self.tag!r}, False): this GraphDef links to objects that the outer "
                    f"split_context({self.tag!r}) did not split; merge inside the transform "
                    "(step 2) what the outer split returned."
                )
            reuse = {i: outer[j] for i, j in graphdef.links}
        root, _ = build_node(graphdef.node, leaves, self._built, reuse)
        if reuse:
            epoch.bump()  # objects were rebuilt in place: cached walks must look again
        return root  # type: ignore[no-any-return]


def _gather(graphdef: GraphDef[Any], states: tuple[State[Any], ...]) -> list[Any]:
    """The leaves of ``states`` in the GraphDef's leaf order."""
    found: dict[tuple[Any, ...], Any] = {}
    for s in states:
        if not isinstance(s, State):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
            raise TypeError(f"merge_context: ctx.merge takes States after the GraphDef, got {type(s).__name__}.")
        found.update(zip(s.paths, s.leaves))
    missing = [path_str(p) for p in graphdef.layout.paths if p not in found]
    if missing or len(found) != len(graphdef.layout.paths):
        extra = [path_str(p) for p in found if p not in set(graphdef.layout.paths)]
        raise ValueError(
            f"merge_context: the states do not fit the GraphDef: missing paths {missing}, unexpected "
            f"paths {extra}. Pass every State the matching ctx.split returned."
        )
    return [found[p] for p in graphdef.layout.paths]


@contextmanager
def merge_context(ctxtag: Hashable | None = None, inner: bool | None = None) -> Generator[MergeContext, None, None]:
    """A context whose ``ctx.merge`` calls share the objects they build. With ``ctxtag``,
    the merges are step (2) (``inner=True``, inside the transform) or step (4)
    (``inner=False``, outside) of ``update_context(ctxtag)``."""
    update: UpdateContext | None = None
    if ctxtag is not None:
        if inner is None:
            raise ValueError(
                f"merge_context({ctxtag!r}) needs inner=: True inside the transform (step 2), "
                "False outside it (step 4)."
            )
        update = current_update_context(ctxtag)
    ctx = MergeContext(ctxtag, inner, update)
    try:
        yield ctx
    finally:
        if update is not None:
            if inner:  # step (2): remember which copy stands for which outer node
                built = ctx._built
                update.inner_index = {id(obj): i for i, obj in built.items()}
                update._inner_alive = list(built.values())
            else:  # step (4) done
                update.outer_nodes = None
        ctx._built = {}
