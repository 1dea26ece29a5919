"""Declared fields read as their value type on instances; imperative cells read as cells."""

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import assert_type

import nnx
from typecheck.models import BatchNorm, Block, Count, Linear, Model

rngs = nnx.Rngs(0)
linear = Linear(2, 3, rngs=rngs)
assert_type(linear.w, jax.Array)  # a Param field is the array, no plugin needed
assert_type(linear.b, jax.Array)
assert_type(linear.din, int)  # a static field
assert_type(Linear.w, nnx.Param[jax.Array])  # on the class: the cell kind (plugin / stubs)
assert_type(BatchNorm.mean, nnx.BatchStat[jax.Array])
assert_type(linear(jnp.ones((1, 2))), jax.Array)
assert_type(jnp.dot(jnp.ones((1, 2)), linear.w), jax.Array)  # no Param in the way

bn = BatchNorm(3)
assert_type(bn.mean, jax.Array)  # a BatchStat field
assert_type(bn.momentum, float)

block = Block(2, 3, rngs=rngs)
assert_type(block.linear, Linear)  # a submodule assigned in __init__
assert_type(block.calls, Count)  # an imperative cell reads as the cell
assert_type(block.calls.value, jax.Array)

model = Model(rngs=rngs)
assert_type(model.block.bn.var, jax.Array)
assert_type(model.name, str)

# writing a value into a declared field, or sharing a cell into it
linear.w = jnp.zeros((2, 3))
linear.w = nnx.cell(Linear(2, 3, rngs=rngs), "w")
cell: nnx.Variable[Any] = nnx.cell(linear, "w")
assert_type(cell.value, Any)

# an imperative Param keeps its type argument
p = nnx.Param(jnp.ones(3))
assert_type(p, nnx.Param[jax.Array])
assert_type(p.value, jax.Array)


# an optional declared field (default=): construction need not assign it; the
# constructor is the class's own __init__ (the metaclass __call__ is hidden)
class MaybeBias(nnx.Module):
    w: jax.Array = nnx.param()
    b: jax.Array | None = nnx.param(default=None)

    def __init__(self, n: int) -> None:
        self.w = jnp.ones(n)


maybe = MaybeBias(3)
assert_type(maybe.b, jax.Array | None)
assert maybe.b is None
assert_type(type(maybe), type[MaybeBias])
assert type(MaybeBias) is nnx.ObjectMeta
