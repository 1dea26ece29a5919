"""Flax 0.12's graph/tree switches keep every type: ``graph=`` on the graph functions and
transforms, ``nnx.compat``'s graph-mode spellings, ``nnx.set_graph_mode`` as a context and
a decorator. The code runs too (tests/test_typecheck.py runs the pass cases)."""

from typing import Any, Iterator

import jax
import jax.numpy as jnp
from typing_extensions import assert_type

import nnx


class Linear(nnx.Module):
    w: jax.Array = nnx.param()

    def __init__(self) -> None:
        self.w = jnp.ones((2, 2))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w


class Block(nnx.Module):
    mean: jax.Array = nnx.batch_stat()

    def __init__(self) -> None:
        self.linear = Linear()
        self.mean = jnp.zeros(2)


block = Block()

# graph= is a keyword of its own: the filters and the tuple lengths are typed as without it
g, s = nnx.split(block, graph=False)
assert_type(g, nnx.GraphDef[Block])
assert_type(s, nnx.State[Block])
g2, params, rest = nnx.split(block, nnx.Param, ..., graph=False)
assert_type(g2, nnx.GraphDef[Block])
assert_type(nnx.state(block, graph=True), nnx.State[Block])
stats, others = nnx.state(block, nnx.BatchStat, ..., graph=False)
assert_type(nnx.graphdef(block, graph=False), nnx.GraphDef[Block])
assert_type(nnx.clone(block, graph=False), Block)
assert_type(nnx.iter_graph(block, graph=False), Iterator[tuple[tuple[str | int, ...], Any]])

# nnx.compat: the same functions, graph mode fixed
cg, cs = nnx.compat.split(block)
assert_type(cg, nnx.GraphDef[Block])
assert_type(nnx.compat.clone(block), Block)


def forward(m: Linear, x: jax.Array) -> jax.Array:
    return m(x)


tree_step = nnx.jit(forward, graph=False, graph_updates=False)
assert_type(tree_step(Linear(), jnp.ones(2)), jax.Array)
assert_type(nnx.compat.jit(forward)(Linear(), jnp.ones(2)), jax.Array)
assert_type(nnx.vmap(forward, in_axes=(None, 0), graph=False)(Linear(), jnp.ones((3, 2))), jax.Array)


@nnx.set_graph_mode(False)
def in_tree_mode(m: Block) -> nnx.State[Block]:
    return nnx.state(m)


assert_type(in_tree_mode(block), nnx.State[Block])
with nnx.set_graph_mode(False), nnx.set_graph_updates(False):
    assert_type(nnx.set_graph_mode.current_value(), bool)
