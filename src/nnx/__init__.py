"""nnx: a typed neural-network module system for JAX.

Models are plain mutable Python objects that hold their own state and may
share it; ``nnx.split`` turns one into a pure ``(GraphDef, State)`` pair for JAX
and ``nnx.merge`` turns it back.
"""

from nnx.seed_compat import Context, Module, ModuleDef, Node, Partition, context
from nnx.containers import Dict, List
from nnx.fields import Field, StaticField, VariableField, batch_stat, cell, param, ref, static, variable
from nnx.filters import All, Any, Filter, FilterBase, Not, PathContains, buffers, to_filter
from nnx.graph import clone, graphdef, iter_graph, merge, pop, split, state, update
from nnx.graphdef import GraphDef
from nnx.module import ModuleBase
from nnx.objects import Object, ObjectMeta
from nnx.refs import Ref, TraceContextError
from nnx.rngs import Rngs, RngStream
from nnx.sequential import Sequential
from nnx.state import State
from nnx.transforms import (
    Carry, JitWrapped, StateAxes, cond, eval_shape, fori_loop, grad, jit, remat, scan, switch, value_and_grad, vmap,
    while_loop,
)
from nnx.variables import BatchStat, Cache, Intermediate, Param, RngCount, RngKey, RngState, Variable

Sequence = List  # seed 003's name for a list of submodules

__all__ = [
    "Carry", "StateAxes", "cond", "eval_shape", "fori_loop", "grad", "remat", "scan", "switch",
    "value_and_grad", "vmap", "while_loop",
    "All", "Any", "BatchStat", "Cache", "Context", "Dict", "Field", "Filter", "FilterBase", "GraphDef",
    "Intermediate", "JitWrapped", "List", "Module", "ModuleBase", "ModuleDef", "Node", "Not", "Object", "ObjectMeta", "Param",
    "Partition", "PathContains", "Ref", "RngCount", "RngKey", "RngState", "RngStream", "Rngs",
    "Sequence", "Sequential", "State", "StaticField", "TraceContextError", "Variable", "VariableField",
    "batch_stat", "buffers", "cell", "clone", "context", "graphdef", "iter_graph", "jit", "merge", "param",
    "pop", "ref", "split", "state", "static", "to_filter", "update", "variable",
]

# -- layers, optimizer, metrics (issue 5) ----------------------------------------
from nnx import metrics, nn
from nnx.metrics import MultiMetric
from nnx.nn import *  # noqa: F403 - every layer, initializer module and activation, listed in nnx.nn.__all__
from nnx.optim import Optimizer, OptState

__all__ += ["metrics", "nn", "MultiMetric", "Optimizer", "OptState"]
__all__ += nn.__all__

# -- ecosystem (issue 6): sharding, display, tabulate, checkpoints --------------
from nnx import checkpoint
from nnx.display import display
from nnx.sharding import (
    abstract_sharded,
    get_named_sharding,
    get_partition_spec,
    init_sharded,
    logical_axis_rules,
    logical_to_mesh_axes,
    with_partitioning,
    with_sharding_constraint,
)
from nnx.tabulate import tabulate

__all__ += [
    "abstract_sharded", "checkpoint", "display", "get_named_sharding", "get_partition_spec", "init_sharded",
    "logical_axis_rules", "logical_to_mesh_axes", "tabulate", "with_partitioning", "with_sharding_constraint",
]

# typing (issue 4): the opt-in declarative constructor and the stub protocol
from nnx.declarative import dataclass
from nnx.nn.activations import *  # noqa: F403 - again: mypy does not follow nnx.nn's `__all__ += activations.__all__`
from nnx.state import HasState

__all__ += ["HasState", "dataclass"]

# Flax 0.12's object-model functions (issue 12)
from nnx.data import data
from nnx.nn.metadata import Initializer
from nnx.nn.instance_norm import InstanceNorm
from nnx.nn.optimized_lstm_cell import OptimizedLSTMCell
from nnx.nn.prelu import PReLU
from nnx.nn.simple_cell import SimpleCell
from nnx.nn.spectral_norm import SpectralNorm
from nnx.nn.weight_norm import WeightNorm
from nnx.optim import ModelAndOptimizer
from nnx.pure import as_pure, replace_by_pure_dict, to_flat_state, to_pure_dict
from nnx.traversal import find_duplicates, iter_module_children, iter_modules, recursive_map, with_attributes

__all__ += [
    "Initializer", "InstanceNorm", "ModelAndOptimizer", "OptimizedLSTMCell", "PReLU", "SimpleCell", "SpectralNorm", "WeightNorm",
    "as_pure", "data", "find_duplicates", "iter_module_children", "iter_modules", "recursive_map", "replace_by_pure_dict", "to_flat_state",
    "to_pure_dict", "with_attributes",
]

# Flax 0.12's graph/tree switches (issue 12): tree mode refuses shared references; nnx.compat fixes graph mode
from nnx import compat, modes
from nnx.modes import set_graph_mode, set_graph_updates

__all__ += ["compat", "modes", "set_graph_mode", "set_graph_updates"]
# Flax 0.12's RNG API (issue 12, item 4)
from nnx.rng_draws import KeylessInitializer
from nnx.rng_graph import SplitBackups, fork_rngs, reseed, restore_rngs, split_rngs, with_rngs

__all__ += ["KeylessInitializer", "SplitBackups", "fork_rngs", "reseed", "restore_rngs", "split_rngs", "with_rngs"]
from nnx.prefix import prefix

__all__ += ["prefix"]
from nnx.transforms.jit_partial import JitPartial, jit_partial

__all__ += ["JitPartial", "jit_partial"]
from nnx.transforms.custom_vjp import CustomVjp, custom_vjp

__all__ += ["CustomVjp", "custom_vjp"]
from nnx.transforms.shard_map import shard_map
from nnx.transforms.state_specs import StateSharding

__all__ += ["StateSharding", "shard_map"]
from nnx.transforms.jvp_vjp import jvp, vjp

__all__ += ["jvp", "vjp"]
from nnx.transforms.diff_state import DiffState

__all__ += ["DiffState"]
# Flax's name, re-exported by the ``as`` form and kept out of __all__ so that
# ``from nnx import *`` does not shadow the builtin ``map``.
from nnx.state_map import map as map  # noqa: A004
from nnx.transforms.checkify import checkify
from nnx.transforms.make_jaxpr import make_jaxpr

__all__ += ["checkify", "make_jaxpr"]
from nnx.transforms.pmap import pmap

__all__ += ["pmap"]
from nnx.capture import capture

__all__ += ["capture"]
# Flax 0.12's model views and its module name for the graph functions (issue 12)
from nnx import graphlib  # Flax code reaches nnx.split as nnx.graphlib.split
from nnx.view import view, view_info

__all__ += ["graphlib", "view", "view_info"]
# Flax 0.12's split-with-the-GraphDef (issue 12, item 5)
from nnx.graph_state import GraphState
from nnx.unpack import unpack

__all__ += ["GraphState", "unpack"]
from nnx.call import Caller, PureState, call

__all__ += ["Caller", "PureState", "call"]
from nnx import statelib
from nnx.var_metadata import VarDefaults, set_metadata, var_defaults

__all__ += ["VarDefaults", "set_metadata", "statelib", "var_defaults"]
from nnx.update_context import (
    MergeContext, SplitContext, UpdateContext, current_update_context, merge_context, split_context, update_context,
)

__all__ += [
    "MergeContext", "SplitContext", "UpdateContext", "current_update_context", "merge_context", "split_context",
    "update_context",
]
from nnx import extract
from nnx.extract import NodeStates, from_tree, to_tree

__all__ += ["NodeStates", "extract", "from_tree", "to_tree"]
from nnx.children import iter_children

__all__ += ["iter_children"]
# Flax 0.12's pytree objects and data/static marks (issue 12, item 5)
from nnx.data import Data, Static, is_data, register_data_type
from nnx.pytree import Pytree

__all__ += ["Data", "Pytree", "Static", "is_data", "register_data_type"]
# Flax 0.12's gradient of intermediate values: module.perturb, nnx.capture(init=), merge_state
from nnx.variables import Perturbation

merge_state = State.merge  # Flax's name for combining States (later ones win)
__all__ += ["Perturbation", "merge_state"]
# Flax's type variable for generic Variable kinds: ``class Broadcast(nnx.Variable[nnx.A]): ...``
from nnx.variables import T as A

__all__ += ["A"]
# Sharding names that follow a transform's axis (Flax's nnx.transform_metadata)
from nnx.transforms.metadata import PARTITION_NAME, transform_metadata

__all__ += ["PARTITION_NAME", "transform_metadata"]
