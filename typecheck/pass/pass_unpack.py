"""``nnx.unpack`` / ``nnx.merge`` of GraphStates, ``nnx.call`` and the split/merge contexts
keep the module type. The code runs too (tests/test_typecheck.py runs the pass cases)."""

import jax
import jax.numpy as jnp
from typing_extensions import assert_type

import nnx


class Linear(nnx.Module):
    w: jax.Array = nnx.param()
    mean: jax.Array = nnx.batch_stat()

    def __init__(self) -> None:
        self.w = jnp.ones((2, 2))
        self.mean = jnp.zeros(2)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w


model = Linear()

# one GraphState for no filter or one, a tuple of the arity for more
assert_type(nnx.unpack(model), nnx.GraphState[Linear])
assert_type(nnx.unpack(model, ..., graph=True), nnx.GraphState[Linear])
params, rest = nnx.unpack(model, nnx.Param, ...)
assert_type(params, nnx.GraphState[Linear])
assert_type(nnx.unpack(model, nnx.Param, nnx.BatchStat, ...), tuple[nnx.GraphState[Linear], nnx.GraphState[Linear], nnx.GraphState[Linear]])

# merge rebuilds the module type from GraphStates alone, as from a GraphDef and States
assert_type(nnx.merge(params, rest), Linear)
assert_type(nnx.merge(*nnx.split(model)), Linear)

# a GraphState is a State: update and attribute access take it
nnx.update(model, params)
assert_type(params._graphdef, nnx.GraphDef[Linear])

# nnx.call on split's pair
pure: nnx.PureState[Linear] = nnx.split(model)
y, pure = nnx.call(pure)(jnp.ones((1, 2)))
assert_type(pure, nnx.PureState[Linear])

# contexts
with nnx.split_context() as ctx:
    g, s = ctx.split(model)
    assert_type(g, nnx.GraphDef[Linear])
with nnx.merge_context() as mctx:
    assert_type(mctx.merge(g, s), Linear)
