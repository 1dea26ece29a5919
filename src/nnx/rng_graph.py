"""The RNG streams inside a graph: split, fork, broadcast, reseed and restore them.

A model holds its ``Rngs`` (or single ``RngStream``s) somewhere in its graph.
Before mapping a function over n members with ``nnx.vmap``/``nnx.scan``, each
stream should hold n keys, one per member; afterwards the caller's streams
should be as they were. These functions do that for every stream reachable
from a node (a module, an ``Rngs``, or any pytree holding them, such as a
function's ``(args, kwargs)``)::

    with nnx.split_rngs(model, splits=5):        # every stream now holds 5 keys
        ensemble_step(model)                    # ...which nnx.vmap maps over
    # streams restored: same key, count advanced by the one draw the split made

    @nnx.split_rngs(splits=5)                   # the same, around each call
    @nnx.vmap(in_axes=0, out_axes=0)
    def create(rngs): ...

They work in one of two ways:

* **in place** (the default): the caller's streams are changed and a
  ``SplitBackups`` is returned; ``nnx.restore_rngs(backups)``, or leaving its
  ``with`` block, puts the keys back;
* **on a copy** (``graph_updates=False`` or ``graph=False``): a copy of the
  node is returned whose streams are new; the original streams only advance
  their count by the one draw each new key came from. Modules and containers
  are copied, cells are shared (as ``nnx.recursive_map`` does).

Which streams are changed is chosen by a filter (``only=``, or the keys of a
``{filter: size}`` mapping). Here a string names a stream (``only='params'``
is the ``params`` stream), as in Flax; types, predicates, ``nnx.Not`` etc. are
matched against the stream's ``key`` and ``count`` cells.

Every new key is computed before any stream is touched, so a call that
raises leaves the streams as they were.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterator, Literal, Sequence, TypeVar, Union, cast, overload

import jax
import jax.numpy as jnp

from nnx.containers import Dict, List
from nnx.filters import Filter, Path
from nnx.graph import iter_graph
from nnx.jaxapi import tree_flatten, tree_unflatten
from nnx.objects import Object
from nnx.rngs import RngStream, Rngs, SizeRules, Sizes, StreamFilter, first_rule, size_rules, stream_filter
from nnx.traversal import recursive_map
from nnx.variables import RngCount, RngKey, Variable

A = TypeVar("A")
F = TypeVar("F", bound=Callable[..., Any])

_NODES = (Object, List, Dict, Variable)

#: One changed stream: ``(stream, key, count)`` to put back, and the count it had
#: before the change drew from it (restored instead when a ``with`` block raises).
StreamBackup = tuple[RngStream, jax.Array, jax.Array]


class SplitBackups:
    """The streams an in-place ``split_rngs``/``fork_rngs`` changed, to restore them.

    Iterate it for ``(stream, key, count)``; ``nnx.restore_rngs(backups)`` puts
    each stream's key back and leaves its count advanced by the one draw the
    change made. As a context manager it restores on exit; when the block
    raises, the counts go back to where they were before the change too.
    """

    def __init__(self, backups: list[StreamBackup], before: list[jax.Array]) -> None:
        self.backups = backups
        self._before = before

    def __iter__(self) -> Iterator[StreamBackup]:
        return iter(self.backups)

    def __len__(self) -> int:
        return len(self.backups)

    def __enter__(self) -> SplitBackups:
        return self

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        restore_rngs(self)
        if error is not None:
            for (stream, _, _), count in zip(self.backups, self._before):
                stream.count.value = count


def restore_rngs(backups: SplitBackups | Sequence[StreamBackup], /) -> None:
    """Put back the keys and counts an in-place ``split_rngs``/``fork_rngs`` replaced."""
    for stream, key, count in backups:
        stream.key.value = key
        stream.count.value = count


# -- finding the streams -----------------------------------------------------------


def _key_name(entry: Any) -> str | int:
    for attr in ("key", "idx", "name"):  # DictKey, SequenceKey, GetAttrKey
        if hasattr(entry, attr):
            found: str | int = getattr(entry, attr)
            return found
    return str(entry)


def _is_node(value: Any) -> bool:
    return isinstance(value, _NODES)


def _rooted(node: Any) -> list[tuple[Path, Any]]:
    """The graph nodes in the pytree ``node``, each with its path of plain keys."""
    flat = jax.tree_util.tree_flatten_with_path(node, is_leaf=_is_node)[0]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return [(tuple(_key_name(k) for k in keypath), leaf) for keypath, leaf in flat if _is_node(leaf)]  # pyright: ignore[reportUnknownVariableType]


def streams_in(node: Any) -> list[tuple[Path, RngStream]]:
    """Every RNG stream reachable from ``node`` (a graph node or a pytree holding some),
    once each, at the first path it is reached by."""
    seen: set[int] = set()
    found: list[tuple[Path, RngStream]] = []
    for prefix, root in _rooted(node):
        for path, value in iter_graph(root):
            if isinstance(value, RngStream) and id(value) not in seen:
                seen.add(id(value))
                found.append(((*prefix, *path), value))
    return found


def _next_key(stream: RngStream) -> jax.Array:
    """The key ``stream()`` would return, without advancing the stream."""
    key, count = stream.key.value, stream.count.value
    if key.ndim != 0:
        raise ValueError(
            f"{stream.tag!r} stream: its key is already split (shape {tuple(key.shape)}); only a stream "
            "with a single key can be split, forked or broadcast. Restore it first (nnx.restore_rngs), "
            "or leave it out with only=nnx.Not(...)."
        )
    return jax.random.fold_in(key, count)


def _split(key: jax.Array, splits: Sizes, squeeze: bool) -> jax.Array:
    keys = jax.random.split(key, splits)
    return keys[0] if squeeze else keys


def _shape(size: Sizes) -> tuple[int, ...]:
    return (size,) if isinstance(size, int) else tuple(size)


def _in_place(graph: bool | None, graph_updates: bool | None) -> bool:
    return graph is not False and graph_updates is not False


# -- in place ----------------------------------------------------------------------


def _check_writable(plan: list[tuple[RngStream, jax.Array]]) -> None:
    """Raise (``nnx.TraceContextError``) before any write if some stream may not be
    written here: one made outside the JAX transform that is running now."""
    for stream, _ in plan:
        stream.key._check_trace("write to")
        stream.count._check_trace("write to")


def _apply(plan: list[tuple[RngStream, jax.Array]]) -> SplitBackups:
    """Give each stream its new key (and a zero count); remember what to put back."""
    _check_writable(plan)
    backups: list[StreamBackup] = []
    before: list[jax.Array] = []
    for stream, key in plan:
        count = stream.count.value
        before.append(count)
        backups.append((stream, stream.key.value, count + 1))  # the draw the new key came from
    for stream, key in plan:
        stream.key.value = key
        stream.count.value = jnp.zeros(key.shape, dtype=jnp.uint32)
    return SplitBackups(backups, before)


# -- on a copy ---------------------------------------------------------------------


def _copy_with(node: A, plan: Callable[[Path, RngStream], jax.Array | None]) -> A:
    """A copy of ``node`` (modules and containers copied, cells shared) in which each
    stream ``plan`` gives a new key (not None) holds that key and a zero count.

    Every new key is computed before anything changes; then each original stream
    advances its count by the one draw its new key came from."""
    planned = [(stream, key) for path, stream in streams_in(node) if (key := plan(path, stream)) is not None]
    if not planned:
        return node
    by_cell = {id(stream.key): key for stream, key in planned}  # the copy shares the key cells
    leaves, treedef = tree_flatten(node, is_leaf=_is_node)
    at = [i for i, leaf in enumerate(leaves) if _is_node(leaf)]

    def visit(path: Path, value: Any) -> Any:
        if isinstance(value, RngStream) and id(value.key) in by_cell:
            key = by_cell[id(value.key)]
            value.key = RngKey(key)  # ``value`` is already the copy
            value.count = RngCount(jnp.zeros(key.shape, dtype=jnp.uint32))
        return value

    copied = recursive_map(visit, List([leaves[i] for i in at]))
    for i, new in zip(at, copied):
        leaves[i] = new
    for stream, _ in planned:
        stream.count.value = stream.count.value + 1
    out: A = tree_unflatten(treedef, leaves)
    return out


# -- split_rngs --------------------------------------------------------------------


@overload
def split_rngs(
    node: Any,
    /,
    *,
    splits: Sizes,
    only: Filter = ...,
    squeeze: bool = False,
    graph: Literal[True] | None = None,
    graph_updates: Literal[True] | None = None,
) -> SplitBackups: ...
@overload
def split_rngs(
    node: A, /, *, splits: Sizes, only: Filter = ..., squeeze: bool = False, graph: Literal[False], graph_updates: bool | None = None
) -> A: ...
@overload
def split_rngs(
    node: A, /, *, splits: Sizes, only: Filter = ..., squeeze: bool = False, graph: bool | None = None, graph_updates: Literal[False]
) -> A: ...
@overload
def split_rngs(
    *, splits: Sizes, only: Filter = ..., squeeze: bool = False, graph: bool | None = None, graph_updates: bool | None = None
) -> Callable[[F], F]: ...
def split_rngs(
    node: Any = None,
    /,
    *,
    splits: Sizes,
    only: Filter = ...,
    squeeze: bool = False,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> Any:
    """Give every stream in ``node`` selected by ``only`` the keys ``split(stream(), splits)``.

    In place (the default) it returns a ``SplitBackups`` to restore them (a context
    manager); with ``graph_updates=False`` (or ``graph=False``) it returns a copy of
    ``node`` holding the split streams. ``squeeze=True`` (with ``splits=1``) keeps a
    single, new key. Without ``node`` it is a decorator that splits the streams in
    the function's arguments for the duration of each call.
    """
    if node is None:
        return _decorator(lambda tree: _split_rngs(tree, splits, only, squeeze, graph, graph_updates))
    return _split_rngs(node, splits, only, squeeze, graph, graph_updates)


def _split_rngs(node: Any, splits: Sizes, only: Filter, squeeze: bool, graph: bool | None, graph_updates: bool | None) -> Any:
    if squeeze and splits != 1:
        raise ValueError(f"split_rngs: squeeze=True needs splits=1 (got splits={splits!r}); it drops that axis.")
    selected = stream_filter(only)

    def new_key(path: Path, stream: RngStream) -> jax.Array | None:
        return _split(_next_key(stream), splits, squeeze) if selected(path, stream) else None

    return _run(node, new_key, graph, graph_updates)


def _run(node: Any, new_key: Callable[[Path, RngStream], jax.Array | None], graph: bool | None, graph_updates: bool | None) -> Any:
    if not _in_place(graph, graph_updates):
        return _copy_with(node, new_key)
    plan: list[tuple[RngStream, jax.Array]] = []
    for path, stream in streams_in(node):
        key = new_key(path, stream)
        if key is not None:
            plan.append((stream, key))
    return _apply(plan)


def _decorator(change: Callable[[Any], Any]) -> Callable[[F], F]:
    """Wrap ``f`` so that ``change`` is applied to its ``(args, kwargs)`` for each call:
    in place and undone afterwards, or on a copy that ``f`` is then called with."""

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = change((args, kwargs))
            if isinstance(result, SplitBackups):
                with result:
                    return f(*args, **kwargs)
            new_args, new_kwargs = cast("tuple[tuple[Any, ...], dict[str, Any]]", result)
            return f(*new_args, **new_kwargs)

        return cast(F, wrapper)

    return decorate


# -- fork_rngs ---------------------------------------------------------------------


@overload
def fork_rngs(
    node: Any, /, *, split: SizeRules = None, graph: Literal[True] | None = None, graph_updates: Literal[True] | None = None
) -> SplitBackups: ...
@overload
def fork_rngs(node: A, /, *, split: SizeRules = None, graph: Literal[False], graph_updates: bool | None = None) -> A: ...
@overload
def fork_rngs(node: A, /, *, split: SizeRules = None, graph: bool | None = None, graph_updates: Literal[False]) -> A: ...
@overload
def fork_rngs(*, split: SizeRules = None, graph: bool | None = None, graph_updates: bool | None = None) -> Callable[[F], F]: ...
def fork_rngs(
    node: Any = None, /, *, split: SizeRules = None, graph: bool | None = None, graph_updates: bool | None = None
) -> Any:
    """Give every stream in ``node`` a new key drawn from it (``stream.fork()``).

    ``split={filter: n}`` splits the new key of the streams a filter selects (the
    first matching filter decides; ``None`` forks without splitting); streams no
    filter selects are left alone. In place or on a copy, and as a decorator, as
    ``split_rngs``.
    """
    if node is None:
        return _decorator(lambda tree: _fork_rngs(tree, split, graph, graph_updates))
    return _fork_rngs(node, split, graph, graph_updates)


def _fork_rngs(node: Any, split: SizeRules, graph: bool | None, graph_updates: bool | None) -> Any:
    table = size_rules(split)

    def new_key(path: Path, stream: RngStream) -> jax.Array | None:
        found, size = first_rule(table, path, stream)
        if not found:
            return None
        key = _next_key(stream)
        return key if size is None else jax.random.split(key, size)

    return _run(node, new_key, graph, graph_updates)


# -- with_rngs ---------------------------------------------------------------------

ForkRules = Union[Filter, Sequence[Filter], None]


@overload
def with_rngs(
    node: A,
    /,
    *,
    split: SizeRules = None,
    fork: ForkRules = None,
    broadcast: SizeRules = None,
    only: Filter = True,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> A: ...
@overload
def with_rngs(
    *,
    split: SizeRules = None,
    fork: ForkRules = None,
    broadcast: SizeRules = None,
    only: Filter = True,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> Callable[[F], F]: ...
def with_rngs(
    node: Any = None,
    /,
    *,
    split: SizeRules = None,
    fork: ForkRules = None,
    broadcast: SizeRules = None,
    only: Filter = True,
    graph: bool | None = None,
    graph_updates: bool | None = None,
) -> Any:
    """A copy of ``node`` whose streams are split, broadcast or forked, stream by stream.

    ``split`` and ``broadcast`` take an int or shape for every stream or a
    ``{filter: shape}`` mapping; ``fork`` a filter (or several) of streams to fork.
    A stream takes the first rule that selects it, in the order split, broadcast,
    fork; streams no rule selects (or ``only`` leaves out) keep their key. A stream
    that two rules select by specific filters (not ``...``) is an error. The
    original streams only advance their counts. Without ``node``, a decorator that
    calls the function with the changed copy of its arguments.
    """
    if graph_updates:
        raise ValueError(
            "with_rngs returns a changed copy and has no in-place form (graph_updates=True); "
            "use nnx.split_rngs / nnx.fork_rngs to change streams in place."
        )
    if node is None:
        return _decorator(lambda tree: with_rngs(tree, split=split, fork=fork, broadcast=broadcast, only=only, graph=graph))
    rules: list[tuple[str, list[tuple[StreamFilter, Any]], list[Filter]]] = []
    for name, given in (("split", split), ("broadcast", broadcast)):
        if given is not None:
            filters: list[Filter] = list(given) if not isinstance(given, (int, tuple)) else [...]
            rules.append((name, size_rules(given), filters))
    if fork is not None:
        forks: list[Filter] = list(cast("list[Filter]", fork)) if isinstance(fork, list) else [cast(Filter, fork)]
        rules.append(("fork", [(stream_filter(f), None) for f in forks], forks))
    selected = stream_filter(only)

    def new_key(path: Path, stream: RngStream) -> jax.Array | None:
        if not selected(path, stream):
            return None
        chosen: dict[str, tuple[Filter, Any]] = {}  # rule -> its first filter selecting the stream
        for name, table, filters in rules:
            for (matches, size), f in zip(table, filters):
                if matches(path, stream):
                    chosen[name] = (f, size)
                    break
        specific = [n for n, (f, _) in chosen.items() if f is not ... and f is not True]
        if len(specific) > 1:
            lines = "; ".join(f"{n} by {chosen[n][0]!r}" for n in specific)
            raise ValueError(f"with_rngs: the stream at {path} matches multiple rules ({lines}); make the filters disjoint.")
        for name in ("split", "broadcast"):
            if name in chosen:
                shape: Sizes | None = chosen[name][1]
                if shape is None:
                    return None  # ``{filter: None}``: leave the stream as it is
                key = _next_key(stream)
                if name == "split":
                    return jax.random.split(key, shape)
                return jnp.broadcast_to(key, _shape(shape) + key.shape)
        return _next_key(stream) if "fork" in chosen else None

    return _copy_with(node, new_key)


# -- reseed ------------------------------------------------------------------------

Policy = Union[Literal["scalars_only", "match_shape"], Callable[[Path, jax.Array, tuple[int, ...]], jax.Array]]


def _scalars_only(path: Path, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    if shape != ():
        raise ValueError(
            f"reseed: the stream at {path} holds keys of shape {shape}, not a single key. "
            "Pass policy='match_shape' to split the new key to that shape, or a callable "
            "(path, key, shape) -> keys."
        )
    return key


def _match_shape(path: Path, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return key if shape == () else jax.random.split(key, shape)


def reseed(node: Any, /, *, graph: bool | None = None, policy: Policy = "scalars_only", **seeds: int | jax.Array) -> None:
    """Restart the named streams in ``node`` from new seeds: ``nnx.reseed(model, dropout=42)``.

    Every stream whose tag is a keyword gets a key drawn from ``nnx.Rngs(**seeds)``
    (so two streams with one tag get different keys) and a zero count: a model
    reseeded with the seed it was built with draws the same keys again. A stream
    holding several keys needs ``policy='match_shape'`` (the new key is split to
    its shape) or a callable ``(path, key, shape) -> keys``.
    """
    rule: Callable[[Path, jax.Array, tuple[int, ...]], jax.Array]
    if policy == "scalars_only":
        rule = _scalars_only
    elif policy == "match_shape":
        rule = _match_shape
    elif callable(policy):
        rule = policy
    else:
        raise ValueError(f"reseed: policy must be 'scalars_only', 'match_shape' or a callable; got {policy!r}.")
    source = Rngs(**seeds)
    plan: list[tuple[RngStream, jax.Array]] = []
    for path, stream in streams_in(node):
        if stream.tag in seeds:
            plan.append((stream, rule(path, source[stream.tag](), tuple(stream.key.value.shape))))
    _check_writable(plan)
    for stream, key in plan:
        stream.key.value = key
        stream.count.value = jnp.zeros(key.shape, dtype=jnp.uint32)
