"""``GraphDef.nodes``: the nodes a GraphDef describes, as small typed records.

A GraphDef stores its graph as nested tuples (see ``nnx.graphdef``). For code
that inspects one (Flax code reads ``graphdef.nodes[0]`` to see what a split
produced), ``nodes`` lists them depth-first, in the order the split met them:

* ``NodeDef``: an Object, ``nnx.List`` or ``nnx.Dict`` (its type, index and keys;
  a plain list or dict root was split as the tracked container merge builds);
* ``VariableDef``: a cell (its kind, index and metadata);
* ``NodeRef``: a node described earlier (sharing, cycles), or by an earlier
  split of the same ``split_context``: a reference to its index.

Plain arrays, static values and tuples are not nodes and are not listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnx.containers import Dict, List
from nnx.state import thaw_metadata


@dataclass(frozen=True, slots=True)
class NodeDef:
    """An Object or container: its type, node index and attribute names / keys."""

    type: type[Any]
    index: int
    keys: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class VariableDef:
    """A cell: its Variable kind, node index and metadata."""

    type: type[Any]
    index: int
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A node already described: the index it was given."""

    index: int


def records(node: tuple[Any, ...]) -> list[NodeDef | VariableDef | NodeRef]:
    """The nodes of a GraphDef description, depth first (iteratively: any depth)."""
    out: list[NodeDef | VariableDef | NodeRef] = []
    pending: list[tuple[Any, ...]] = [node]
    while pending:
        d = pending.pop()
        tag = d[0]
        children: list[tuple[Any, ...]] = []
        if tag == "object":
            out.append(NodeDef(d[1], d[2], tuple(k for k, _ in d[3])))
            children = [sub for _, sub in d[3]]
        elif tag in ("list", "dict"):
            kind: type[Any] = List if tag == "list" else Dict
            keys = tuple(range(len(d[2]))) if tag == "list" else tuple(k for k, _ in d[2])
            out.append(NodeDef(kind, d[1], keys))
            children = list(d[2]) if tag == "list" else [sub for _, sub in d[2]]
        elif tag == "tuple":
            children = list(d[1])
        elif tag == "var":
            out.append(VariableDef(d[1], d[2], thaw_metadata(d[3])))
        elif tag == "ref":
            out.append(NodeRef(d[1]))
        pending.extend(reversed(children))
    return out
