"""Walking a model's graph: Flax 0.12's ``iter_modules``, ``iter_module_children``, ``find_duplicates``, ``recursive_map``, ``with_attributes``.

All four see the graph ``nnx.iter_graph`` sees (modules, ``nnx.List`` /
``nnx.Dict`` / tuples, cells, arrays), children in sorted key order.
``iter_modules`` and ``recursive_map`` go children first, the root last,
as Flax does, so a function given a node has already seen (or replaced)
everything below it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, TypeVar

import jax
import numpy as np

from nnx.children import iter_children
from nnx.containers import Dict, List
from nnx.filters import Filter, Key, to_filter
from nnx.graph import clone, iter_graph
from nnx.modes import check_tree
from nnx.module import ModuleBase
from nnx.objects import Object
from nnx.state import path_order
from nnx.variables import Variable

N = TypeVar("N")
Path = tuple[Key, ...]


def _post_order(path: Path) -> tuple[tuple[int, Any], ...]:
    """A sort key putting every node after everything below it, siblings in path order."""
    return (*((0, part) for part in path_order(path)), (1, ()))


def iter_modules(module: ModuleBase, /, *, graph: bool | None = None) -> Iterator[tuple[Path, ModuleBase]]:
    """Every module reachable from ``module`` once, with its path: submodules first, ``module`` last (path ``()``).
    ``graph=False``: tree mode (``nnx.modes``), a shared module or cell raises."""
    check_tree(module, graph, "nnx.iter_modules")
    found = [(path, node) for path, node in iter_graph(module, graph=True) if isinstance(node, ModuleBase)]
    yield from sorted(found, key=lambda item: _post_order(item[0]))


def iter_module_children(node: Any, /, *, graph: bool | None = None) -> Iterator[tuple[Key, ModuleBase]]:
    """``nnx.iter_children`` restricted to modules."""
    return iter([(key, child) for key, child in iter_children(node, graph=graph) if isinstance(child, ModuleBase)])


def _all_paths(node: Any) -> dict[int, list[Path]]:
    """Every path at which each shared-able object (Object, container, cell) is reached."""
    paths: dict[int, list[Path]] = {}
    on_path: set[int] = set()  # the objects above the current one: a cycle is not walked twice

    def walk(path: Path, value: Any) -> None:
        ident = id(value)
        if not _shareable(value):
            return
        paths.setdefault(ident, []).append(path)
        if ident in on_path or len(paths[ident]) > 1:
            return  # everything below was recorded at the first path
        on_path.add(ident)
        for key, child in _children(value):
            walk((*path, key), child)
        on_path.discard(ident)

    walk((), node)
    return paths


def _shareable(value: Any) -> bool:
    """Objects, containers and cells: what may be reached at several paths."""
    return isinstance(value, (Object, List, Dict, Variable))


def _children(value: Any) -> list[tuple[Key, Any]]:
    if isinstance(value, Object):
        return sorted(value.__dict__.items())
    if isinstance(value, Dict):
        return sorted(value.items(), key=lambda kv: path_order((kv[0],)))  # pyright: ignore[reportUnknownArgumentType]
    if isinstance(value, (List, tuple)):
        return list(enumerate(value))  # pyright: ignore[reportUnknownArgumentType]
    return []


def find_duplicates(node: Any, /, *, only: Filter = ...) -> list[list[Path]]:
    """The paths of every object reached at more than one path (a shared module or cell).

    One list per shared object, paths in sorted order; ``only`` (any filter)
    keeps the objects it matches. ``[]``: nothing is shared.
    """
    keep = to_filter(only)
    found: list[list[Path]] = []
    nodes = {id(value): value for _, value in iter_graph(node, graph=True)}
    for object_id, paths in _all_paths(node).items():
        value = nodes.get(object_id)
        if len(paths) > 1 and value is not None and keep(min(paths, key=path_order), value):
            found.append(sorted(paths, key=path_order))
    return sorted(found, key=lambda ps: path_order(ps[0]))


def recursive_map(f: Callable[[Path, Any], Any], node: N, /, *, graph: bool | None = None) -> N:
    """A copy of ``node`` with every node ``x`` at path ``p`` replaced by ``f(p, x)``, children first.

    The modules and containers are copied first, so the original's
    structure is untouched and ``f`` may mutate what it is given; the cells
    are not copied (as in Flax): the copy reads and writes the original's
    parameters. What ``f`` returns is put in its parent's place. A node
    shared between paths is mapped once, at its first path, and stays
    shared. ``f`` must return the node itself to keep it. ``graph=False``: tree
    mode (``nnx.modes``), a shared node raises instead.
    """
    check_tree(node, graph, "nnx.recursive_map")
    root = _copy_sharing_cells(node)
    results: dict[int, Any] = {}

    def visit(path: Path, value: Any) -> Any:
        ident = id(value)
        if ident in results:
            return results[ident]
        if _shareable(value) and not isinstance(value, Variable):
            results[ident] = value  # a cycle back to this node sees the node itself
            for key, child in _children(value):
                if not _is_graph_value(child):
                    continue
                new = visit((*path, key), child)
                if new is not child:
                    _replace(value, key, new)
        out = f(path, value)
        results[ident] = out
        return out

    mapped: N = visit((), root)
    return mapped


def _copy_sharing_cells(node: N) -> N:
    """``nnx.clone(node)`` with every cell of the copy replaced by the original's cell, at all its paths."""
    copy = clone(node, graph=True)
    original_paths = _all_paths(node)
    copies = _nodes_by_path(copy)
    for _, value in iter_graph(node, graph=True):
        ident = id(value)
        if not isinstance(value, Variable):
            continue
        for path in original_paths[ident]:
            parent = copies.get(path[:-1]) if path else None
            if parent is not None and not isinstance(parent, tuple):  # a tuple keeps its copied cell
                _replace(parent, path[-1], value)
    return copy


def _nodes_by_path(node: Any) -> dict[Path, Any]:
    """Every object and container of ``node`` at each path it is reached by."""
    values = {id(value): value for _, value in iter_graph(node, graph=True)}
    return {path: values[ident] for ident, paths in _all_paths(node).items() for path in paths if ident in values}


def _is_graph_value(value: Any) -> bool:
    """Nodes and leaves ``f`` is given: objects, containers, cells and arrays (not static attributes)."""
    return isinstance(value, (Object, List, Dict, Variable, tuple, jax.Array, np.ndarray))


def _replace(parent: Any, key: Key, new: Any) -> None:
    if isinstance(parent, tuple):
        raise ValueError(f"recursive_map: cannot replace item {key!r} of a tuple; return the node unchanged.")
    if isinstance(parent, Object):
        setattr(parent, str(key), new)
    else:
        parent[key] = new


def with_attributes(
    node: N, /, *, only: Filter = ..., raise_if_not_found: bool = True, graph: bool | None = None, **attributes: Any
) -> N:
    """A copy of ``node`` whose modules have ``attributes`` set (``deterministic=True``, ...).

    ``node`` itself is unchanged; the copy shares its cells (an evaluation
    copy follows the original's training). ``only``
    (a filter, e.g. ``nnx.Dropout``) chooses the modules; an attribute no
    chosen module has is an error naming it unless ``raise_if_not_found=False``.
    ``graph=False``: tree mode (``nnx.modes``), a shared module or cell raises.
    """
    chosen = to_filter(only)
    missing = set(attributes)

    def set_on(path: Path, value: Any) -> Any:
        if isinstance(value, ModuleBase) and chosen(path, value):
            for name, new in attributes.items():
                if hasattr(value, name):
                    setattr(value, name, new)
                    missing.discard(name)
        return value

    check_tree(node, graph, "nnx.with_attributes")
    out = recursive_map(set_on, node, graph=True)
    if missing and raise_if_not_found:
        raise ValueError(
            f"with_attributes: Could not find at least one instance of the following attributes: {sorted(missing)} "
            f"in any chosen module of {type(node).__name__}; pass raise_if_not_found=False to skip them."
        )
    return out
