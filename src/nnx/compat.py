"""Flax 0.12's ``nnx.compat``: the graph functions and transforms with graph mode fixed.

``nnx.compat.split(m)`` is ``nnx.split(m, graph=True)``, ``nnx.compat.jit(f)`` is
``nnx.jit(f, graph=True, graph_updates=True)``, and so on for every name here:
code written against them keeps sharing allowed even where
``nnx.set_graph_mode(False)`` made tree mode the default (see ``nnx.modes``).
Graph mode is already nnx's default, so without that switch each name does
exactly what the plain ``nnx`` function does. A keyword given explicitly
still wins, as with ``functools.partial``.

To the type checkers each name *is* the plain function, with its signature and
overloads; at run time it is that function with the keywords filled in.

(The seeds' older idioms, ``Module.init``, ``nnx.context``, ``ModuleDef``, live in
``nnx.seed_compat``.)
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from nnx import graph as _graph
from nnx import traversal as _traversal
from nnx import transforms as _transforms
from nnx.transforms import checkify as _checkify
from nnx.transforms import custom_vjp as _custom_vjp
from nnx.transforms import jit_partial as _jit_partial
from nnx.transforms import jvp_vjp as _jvp_vjp
from nnx.transforms import make_jaxpr as _make_jaxpr
from nnx.transforms import pmap as _pmap
from nnx.transforms import shard_map as _shard_map

if TYPE_CHECKING:
    from nnx.graph import clone, graphdef, iter_graph, split, state
    from nnx.transforms import (
        cond, eval_shape, fori_loop, grad, jit, remat, scan, switch, value_and_grad, vmap, while_loop,
    )  # fmt: skip
    from nnx.transforms.checkify import checkify
    from nnx.transforms.custom_vjp import custom_vjp
    from nnx.transforms.jit_partial import jit_partial
    from nnx.transforms.jvp_vjp import jvp, vjp
    from nnx.transforms.make_jaxpr import make_jaxpr
    from nnx.transforms.pmap import pmap
    from nnx.transforms.shard_map import shard_map
    from nnx.traversal import iter_modules, recursive_map
else:
    split = functools.partial(_graph.split, graph=True)
    state = functools.partial(_graph.state, graph=True)
    graphdef = functools.partial(_graph.graphdef, graph=True)
    clone = functools.partial(_graph.clone, graph=True)
    iter_graph = functools.partial(_graph.iter_graph, graph=True)
    iter_modules = functools.partial(_traversal.iter_modules, graph=True)
    recursive_map = functools.partial(_traversal.recursive_map, graph=True)

    jit = functools.partial(_transforms.jit, graph=True, graph_updates=True)
    grad = functools.partial(_transforms.grad, graph=True, graph_updates=True)
    value_and_grad = functools.partial(_transforms.value_and_grad, graph=True, graph_updates=True)
    vmap = functools.partial(_transforms.vmap, graph=True, graph_updates=True)
    scan = functools.partial(_transforms.scan, graph=True, graph_updates=True)
    remat = functools.partial(_transforms.remat, graph=True, graph_updates=True)
    cond = functools.partial(_transforms.cond, graph=True, graph_updates=True)
    switch = functools.partial(_transforms.switch, graph=True, graph_updates=True)
    fori_loop = functools.partial(_transforms.fori_loop, graph=True, graph_updates=True)
    while_loop = functools.partial(_transforms.while_loop, graph=True, graph_updates=True)
    eval_shape = functools.partial(_transforms.eval_shape, graph=True, graph_updates=True)
    vjp = functools.partial(_jvp_vjp.vjp, graph=True, graph_updates=True)
    jvp = functools.partial(_jvp_vjp.jvp, graph=True, graph_updates=True)
    shard_map = functools.partial(_shard_map.shard_map, graph=True, graph_updates=True)
    pmap = functools.partial(_pmap.pmap, graph=True, graph_updates=True)
    jit_partial = functools.partial(_jit_partial.jit_partial, graph=True, graph_updates=True)
    custom_vjp = functools.partial(_custom_vjp.custom_vjp, graph=True, graph_updates=True)
    checkify = functools.partial(_checkify.checkify, graph=True, graph_updates=True)
    make_jaxpr = functools.partial(_make_jaxpr.make_jaxpr, graph=True, graph_updates=True)

__all__ = [
    "checkify", "clone", "cond", "custom_vjp", "eval_shape", "fori_loop", "grad", "graphdef", "iter_graph",
    "iter_modules", "jit", "jit_partial", "jvp", "make_jaxpr", "pmap", "recursive_map", "remat", "scan",
    "shard_map", "split", "state", "switch", "value_and_grad", "vjp", "vmap", "while_loop",
]  # fmt: skip
