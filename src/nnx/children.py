"""``nnx.iter_children``: the objects directly below a node, one level only.

Where ``nnx.iter_graph`` walks the whole graph, ``iter_children(block)`` yields
``(key, child)`` for the attributes (or, for an ``nnx.List`` / ``nnx.Dict``,
the entries) of ``block`` that are themselves Objects: its submodules, an
``Rngs``, an optimizer. Cells, arrays, containers and static values are not
children in this sense; in sorted key order, as every graph walk goes.
"""

from __future__ import annotations

from typing import Any, Iterator

from nnx.containers import Dict, List
from nnx.filters import Key
from nnx.modes import check_tree
from nnx.objects import Object, node_items


def iter_children(node: Object | List[Any] | Dict[Any, Any], /, *, graph: bool | None = None) -> Iterator[tuple[Key, Object]]:
    """``(key, child)`` for each Object directly held by ``node``, in key order.
    ``graph=False``: tree mode (``nnx.modes``), a shared node anywhere below raises."""
    if not isinstance(node, (Object, List, Dict)):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
        raise TypeError(
            f"nnx.iter_children takes a Module (or another nnx.Object, nnx.List or nnx.Dict), got "
            f"{type(node).__name__}; for a pytree, iterate it with jax.tree_util."
        )
    check_tree(node, graph, "nnx.iter_children")
    for key, child in node_items(node):
        if isinstance(child, Object):
            yield key, child
