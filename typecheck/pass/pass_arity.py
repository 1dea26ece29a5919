"""split / state / pop / graphdef / merge / partition: tuple lengths the checkers know.

The modules are local to this file (no stub), so both checkers see ``State[Block]``.
"""

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import assert_type

import nnx


class Count(nnx.Variable[jax.Array]):
    pass


class Linear(nnx.Module):
    w: jax.Array = nnx.param()

    def __init__(self) -> None:
        self.w = jnp.ones((2, 2))


class Block(nnx.Module):
    mean: jax.Array = nnx.batch_stat()
    cache: jax.Array = nnx.variable(nnx.Cache)

    def __init__(self) -> None:
        self.linear = Linear()
        self.scale = nnx.Param(jnp.ones(2))
        self.mean = jnp.zeros(2)
        self.cache = jnp.zeros(2)
        self.calls = Count(jnp.array(0))


block = Block()

# no filter: one State typed by the module class
g0, s0 = nnx.split(block)
assert_type(g0, nnx.GraphDef[Block])
assert_type(s0, nnx.State[Block])
assert_type(nnx.state(block), nnx.State[Block])
assert_type(nnx.graphdef(block), nnx.GraphDef[Block])
assert_type(nnx.merge(g0, s0), Block)
assert_type(nnx.clone(block), Block)

# 1 to 4 filters: as many States as filters (unpacking a wrong count is an error)
g1, everything = nnx.split(block, ...)
g2, p2, rest2 = nnx.split(block, nnx.Param, ...)
g3, p3, b3, rest3 = nnx.split(block, nnx.Param, nnx.BatchStat, ...)
g4, lin4, p4, b4, rest4 = nnx.split(block, nnx.PathContains("linear"), nnx.Param, nnx.BatchStat, ...)
assert_type(g1, nnx.GraphDef[Block])
assert_type(g2, nnx.GraphDef[Block])
assert_type(g3, nnx.GraphDef[Block])
assert_type(g4, nnx.GraphDef[Block])
assert_type(nnx.merge(g4, lin4, p4, b4, rest4), Block)

params_a, stats_a = nnx.state(block, nnx.Param, nnx.BatchStat)
one, two, three = nnx.state(block, nnx.Param, nnx.BatchStat, "count")
w, x, y, z = nnx.state(block, nnx.PathContains("linear"), nnx.Param, nnx.BatchStat, ...)

popped = nnx.pop(block, nnx.Cache)
popped_a, popped_b = nnx.pop(Block(), nnx.Cache, Count)

# seed 003: partition returns (states, moduledef)
state, moduledef = block.partition()
assert_type(moduledef, nnx.ModuleDef[Block])
(pp, bb), moduledef2 = block.partition(nnx.Param, ...)
assert_type(moduledef2.merge(pp, bb), Block)
assert_type(block.partition().merge(), Block)

# tuples are graph roots too
linear = Linear()
tg, ts = nnx.split((linear, linear))
assert_type(tg, nnx.GraphDef[tuple[Linear, Linear]])


def generic(m: nnx.Module, *filters: nnx.Filter) -> tuple[Any, ...]:
    """A variable number of filters gives a tuple of unknown length."""
    return nnx.split(m, *filters)
