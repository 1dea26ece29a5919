"""Flax's module name for the graph functions: ``nnx.graphlib.split`` is ``nnx.split``.

Flax code reaches the graph layer through this name, including the split and
merge contexts (``nnx.graphlib.split_context``); each name here is the nnx
function itself, not a second implementation.
"""

from nnx.graph import build_node, clone, graphdef, iter_graph, merge, pop, split, state, update, walk_nodes
from nnx.graph_nodes import NodeDef, NodeRef, VariableDef
from nnx.graph_state import GraphState
from nnx.graphdef import GraphDef
from nnx.update_context import (
    LinkedGraphDef, MergeContext, SplitContext, UpdateContext, current_update_context, merge_context, split_context,
    update_context,
)

__all__ = [
    "GraphDef", "GraphState", "LinkedGraphDef", "MergeContext", "NodeDef", "NodeRef", "SplitContext", "UpdateContext",
    "VariableDef", "build_node", "clone", "current_update_context", "graphdef", "iter_graph", "merge",
    "merge_context", "pop", "split", "split_context", "state", "update", "update_context", "walk_nodes",
]
