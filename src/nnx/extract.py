"""``nnx.to_tree`` / ``nnx.from_tree``: a pytree with modules in it, made pure and back.

``to_tree(tree)`` replaces every graph node in a pytree (a Module, ``Rngs``,
``nnx.List``/``nnx.Dict``, a Variable) by a ``NodeStates``: a pytree holding
the node's GraphDef (static) and its States (leaves). All nodes are split in
one ``split_context``, so a module that appears twice is described once and
the second place holds a reference; ``from_tree`` merges them back in one
``merge_context``, and both places get the same object. With ``ctxtag`` they
are the steps of an ``nnx.update_context`` (see ``nnx.update_context``), which
is how a hand-written transform hands modules through ``jax.vmap`` or
``jax.jit`` and lands the changes on the caller's objects.

``prefix`` (e.g. ``in_axes``) gives each node a prefix; a Variable reached from
two nodes with different prefixes is refused ("inconsistent aliasing"), since
one cell cannot be mapped two ways.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, cast

import jax

from nnx.graph import iter_graph
from nnx.graphdef import GraphDef
from nnx.jaxapi import tree_flatten, tree_unflatten
from nnx.state import path_str
from nnx.transforms.axes import broadcast_prefix
from nnx.transforms.lift import is_graph_node
from nnx.update_context import MergeContext, SplitContext, merge_context, split_context
from nnx.variables import Variable

#: ``prefix`` not given.
_MISSING: Any = object()


class NodeStates:
    """A graph node inside a pure pytree: its GraphDef (static) and its States (leaves).

    ``metadata`` is static data a custom ``split_fn`` may attach (e.g. axes).
    ``from_prefixes`` builds one without a GraphDef, to stand in a prefix tree
    (``in_axes``) where the node's States stand in the value tree.
    """

    __slots__ = ("_graphdef", "states", "metadata")

    def __init__(self, graphdef: GraphDef[Any] | None, states: tuple[Any, ...], metadata: Any = None) -> None:
        self._graphdef = graphdef
        self.states = states
        self.metadata = metadata

    @property
    def graphdef(self) -> GraphDef[Any]:
        """The node's GraphDef (``ValueError`` for a prefix-only NodeStates)."""
        if self._graphdef is None:
            raise ValueError("This NodeStates was made by from_prefixes/from_states and has no GraphDef.")
        return self._graphdef

    @property
    def state(self) -> Any:
        """The single State (``ValueError`` when the node was split into several)."""
        if len(self.states) != 1:
            raise ValueError(f"NodeStates.state: this node has {len(self.states)} States; read .states instead.")
        return self.states[0]

    @classmethod
    def from_split(cls, graphdef: GraphDef[Any] | None, state: Any, /, *states: Any, metadata: Any = None) -> NodeStates:
        """From what ``split`` returned: ``NodeStates.from_split(*ctx.split(node))``."""
        return cls(graphdef, (state, *states), metadata)

    @classmethod
    def from_states(cls, state: Any, /, *states: Any) -> NodeStates:
        """States alone, no GraphDef."""
        return cls(None, (state, *states))

    @classmethod
    def from_prefixes(cls, prefixes: tuple[Any, ...] | list[Any], /, *, metadata: Any = None) -> NodeStates:
        """A stand-in in a prefix tree: one prefix (e.g. a vmap axis) per State."""
        return cls(None, tuple(prefixes), metadata)

    def __repr__(self) -> str:
        return f"NodeStates(graphdef={self._graphdef!r}, states={self.states!r})"


# The GraphDef is a child (a pytree with no leaves), not static data: a prefix tree's
# NodeStates (``from_prefixes``, no GraphDef) then matches a value tree's, as ``None``
# in ``in_axes`` covers any subtree.
def _flatten(ns: NodeStates) -> tuple[tuple[Any, Any], Any]:
    return (ns._graphdef, ns.states), ns.metadata


def _unflatten(metadata: Any, children: Any) -> NodeStates:
    graphdef, states = children
    return NodeStates(graphdef, tuple(states), metadata)


jax.tree_util.register_pytree_node(NodeStates, _flatten, _unflatten)  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry


def default_split_fn(ctx: SplitContext, path: Any, prefix: Any, leaf: Any) -> Any:
    """``to_tree``'s default: the whole node as one State."""
    return NodeStates.from_split(*ctx.split(leaf))


def default_merge_fn(ctx: MergeContext, path: Any, prefix: Any, leaf: Any) -> Any:
    """``from_tree``'s default: merge a NodeStates back into its node."""
    if not isinstance(leaf, NodeStates):
        raise TypeError(f"nnx.from_tree: expected a NodeStates at {jax.tree_util.keystr(path)}, got {type(leaf).__name__}.")  # pyright: ignore[reportUnknownMemberType]
    return ctx.merge(leaf.graphdef, *leaf.states)


def _is_node(x: Any) -> bool:
    return is_graph_node(x)


def _leaves_with_prefixes(
    tree: Any, is_leaf: Callable[[Any], bool], prefix: Any, where: str
) -> tuple[list[tuple[Any, Any]], Any, list[Any]]:
    """``tree``'s (path, leaf) pairs and structure, and each leaf's entry of ``prefix``
    (the prefix itself for every leaf when none was given)."""
    pairs, treedef = cast(
        "tuple[list[tuple[Any, Any]], Any]",
        jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf),  # pyright: ignore[reportUnknownMemberType]
    )
    if prefix is _MISSING or prefix is None:
        return pairs, treedef, [prefix] * len(pairs)
    return pairs, treedef, broadcast_prefix(prefix, tree, where)


def to_tree(
    tree: Any,
    /,
    *,
    prefix: Any = _MISSING,
    split_fn: Callable[[SplitContext, Any, Any, Any], Any] = default_split_fn,
    map_non_graph_nodes: bool = False,
    ctxtag: Hashable | None = None,
    check_aliasing: bool = True,
) -> Any:
    """``tree`` with every graph node replaced by ``split_fn(ctx, path, prefix, node)``
    (a ``NodeStates`` by default), all split in one ``split_context(ctxtag)``."""
    pairs, treedef, prefixes = _leaves_with_prefixes(tree, _is_node, prefix, "nnx.to_tree: prefix")
    if check_aliasing and not (prefix is _MISSING or prefix is None):
        _check_aliasing(pairs, prefixes)
    out: list[Any] = []
    with split_context(ctxtag) as ctx:
        for (path, leaf), leaf_prefix in zip(pairs, prefixes):
            if map_non_graph_nodes or _is_node(leaf):
                leaf = split_fn(ctx, path, leaf_prefix, leaf)
            out.append(leaf)
    return tree_unflatten(treedef, out)


def from_tree(
    tree: Any,
    /,
    *,
    prefix: Any = _MISSING,
    merge_fn: Callable[[MergeContext, Any, Any, Any], Any] = default_merge_fn,
    is_node_leaf: Callable[[Any], bool] = lambda x: isinstance(x, NodeStates),
    is_leaf: Callable[[Any], bool] = lambda x: isinstance(x, NodeStates),
    map_non_graph_nodes: bool = False,
    is_inner: bool | None = None,
    ctxtag: Hashable | None = None,
) -> Any:
    """The inverse of ``to_tree``: every ``NodeStates`` merged back, in one
    ``merge_context(ctxtag, is_inner)``, so shared nodes come back shared."""
    pairs, treedef, prefixes = _leaves_with_prefixes(tree, is_leaf, prefix, "nnx.from_tree: prefix")
    out: list[Any] = []
    with merge_context(ctxtag, is_inner) as ctx:
        for (path, leaf), leaf_prefix in zip(pairs, prefixes):
            if map_non_graph_nodes or is_node_leaf(leaf):
                leaf = merge_fn(ctx, path, leaf_prefix, leaf)
            out.append(leaf)
    return tree_unflatten(treedef, out)


def clear_non_graph_nodes(tree: Any) -> Any:
    """``tree`` with every leaf that is not a graph node replaced by ``None``."""
    leaves, treedef = tree_flatten(tree, is_leaf=_is_node)
    return tree_unflatten(treedef, [x if _is_node(x) else None for x in leaves])


def _check_aliasing(pairs: list[tuple[Any, Any]], prefixes: list[Any]) -> None:
    """Refuse a Variable that two graph nodes reach under different prefixes."""
    first: dict[int, tuple[str, Any, Variable[Any]]] = {}
    for (path, leaf), prefix in zip(pairs, prefixes):
        if not _is_node(leaf):
            continue
        where = jax.tree_util.keystr(path)  # pyright: ignore[reportUnknownMemberType]
        for sub, value in iter_graph(leaf):
            if not isinstance(value, Variable):
                continue
            cell: Variable[Any] = value  # pyright: ignore[reportUnknownVariableType]  # narrowed from Any
            at = f"{where}.{path_str(sub)}" if sub else where
            seen = first.get(id(cell))
            if seen is None:
                first[id(cell)] = (at, prefix, cell)
            elif not _same_prefix(seen[1], prefix):
                raise ValueError(
                    f"Inconsistent aliasing detected: the same {type(cell).__name__} is reached at "
                    f"{seen[0]!r} with prefix {seen[1]!r} and at {at!r} with prefix {prefix!r}. One cell "
                    "is mapped one way: give both places the same prefix (e.g. the same axis)."
                )


def _same_prefix(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b
