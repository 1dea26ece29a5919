"""``nnx.prefix``: one value per state leaf of a module, chosen by filters.

Transforms take a spec per argument -- an axis for ``nnx.vmap``, a sharding for
``nnx.jit`` -- and a module argument holds many kinds of state that often want
different specs. ``prefix`` spells the spec out leaf by leaf::

    axes = nnx.prefix(model, {nnx.Param: 0, ...: None})     # a State of axes
    nnx.vmap(forward, in_axes=(axes, None))(model, x)

For a module (or an ``nnx.List``/``nnx.Dict``, an ``Rngs``) the result is a
``State`` with the module's own paths whose leaves are the chosen values
(``axes.linear.kernel == 0``); for a Variable it is the value itself; a pytree
of those gives the same pytree of results. The rules are a mapping
``{filter: value}`` (the first matching filter decides, and a leaf no filter
matches is an error) or a function ``(path, leaf) -> value``, where ``leaf`` is
the cell (or a plain array).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Union

from nnx.containers import Dict, List
from nnx.filters import Filter, Path, describe, to_filter
from nnx.graph import _Slot, _walk_cached
from nnx.jaxapi import tree_flatten, tree_unflatten
from nnx.objects import Object
from nnx.state import State, path_str
from nnx.variables import Variable

Rules = Union[Mapping[Filter, Any], Callable[[Path, Any], Any]]


def prefix(node: Any, rules: Rules, /, *, graph: bool | None = None) -> Any:
    """The value ``rules`` give each state leaf of ``node``, shaped like ``node``'s state.

    ``graph`` is accepted for Flax's spelling; both of its modes give the same
    result here.
    """
    choose = _chooser(rules)
    leaves, treedef = tree_flatten(node, is_leaf=lambda x: isinstance(x, (Object, List, Dict, Variable)))
    out = [_prefix_of(leaf, choose) for leaf in leaves]
    return tree_unflatten(treedef, out)


def _chooser(rules: Rules) -> Callable[[Path, Any], Any]:
    if not isinstance(rules, Mapping):
        return rules
    mapping: Mapping[Filter, Any] = rules  # pyright: ignore[reportUnknownVariableType]  # narrowed to Mapping[Unknown, Unknown]
    table = [(to_filter(f), value) for f, value in mapping.items()]

    def choose(path: Path, leaf: object) -> Any:
        for f, value in table:
            if f(path, leaf):
                return value
        shown = type(leaf).__name__
        raise ValueError(
            f"nnx.prefix: No filter matched the leaf at {path_str(path)!r} ({shown}); the filters are "
            f"{describe(tuple(mapping))}. Add an entry for it, or end with `...: value` for the rest."
        )

    return choose


def _prefix_of(leaf: Any, choose: Callable[[Path, Any], Any]) -> Any:
    if isinstance(leaf, Variable):
        return choose((), leaf)
    if not isinstance(leaf, (Object, List, Dict)):
        return choose((), leaf)
    graphdef, cells = _walk_cached(leaf)
    layout = graphdef.layout
    values = [choose(path, cell._value if isinstance(cell, _Slot) else cell) for path, cell in zip(layout.paths, cells)]
    return State._make(layout, values)
