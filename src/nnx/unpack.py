"""``nnx.unpack``: split a module into States that each remember its GraphDef.

``graphdef, params, rest = nnx.split(model, nnx.Param, ...)`` becomes
``params, rest = nnx.unpack(model, nnx.Param, ...)``: the same States (same
paths, leaves and filter rules), each a ``GraphState`` holding the GraphDef,
and ``nnx.merge(params, rest)`` rebuilds the module from them alone.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from nnx.filters import Filter
from nnx.graph import split
from nnx.graph_state import GraphState

N = TypeVar("N")


@overload
def unpack(node: N, /, *, graph: bool | None = None) -> GraphState[N]: ...
@overload
def unpack(node: N, f1: Filter, /, *, graph: bool | None = None) -> GraphState[N]: ...
@overload
def unpack(node: N, f1: Filter, f2: Filter, /, *, graph: bool | None = None) -> tuple[GraphState[N], GraphState[N]]: ...
@overload
def unpack(
    node: N, f1: Filter, f2: Filter, f3: Filter, /, *, graph: bool | None = None
) -> tuple[GraphState[N], GraphState[N], GraphState[N]]: ...
@overload
def unpack(
    node: N, f1: Filter, f2: Filter, f3: Filter, f4: Filter, /, *filters: Filter, graph: bool | None = None
) -> tuple[GraphState[N], ...]: ...
def unpack(node: Any, /, *filters: Filter, graph: bool | None = None) -> Any:
    """``nnx.split`` with the GraphDef folded into each State.

    One GraphState with no filter or one filter, else a tuple of one per filter.
    As for ``split``, every leaf must match a filter (end with ``...`` for the
    rest), and ``graph=False`` is tree mode.
    """
    graphdef, *states = split(node, *filters, graph=graph)
    bundled = [GraphState.bundle(graphdef, s) for s in states]
    return bundled[0] if len(bundled) == 1 else tuple(bundled)
