"""Library layers take randomness as ``rngs=``, ``ctx=`` (seed 003) or from
``Module.init(key)`` (seed 000); each constructor is still exactly its ``__init__``."""

from typing import assert_type

import jax
import jax.numpy as jnp

import nnx

linear = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
assert_type(linear, nnx.Linear)
assert_type(nnx.Linear(2, 3, ctx=nnx.context(0)), nnx.Linear)
assert_type(nnx.BatchNorm(3, ctx=nnx.context(0)), nnx.BatchNorm)


class Model(nnx.Module):
    def __init__(self) -> None:
        self.linear = nnx.Linear(2, 3)  # keys from Model.init(key)
        self.bn = nnx.BatchNorm(3)
        self.dropout = nnx.Dropout(0.5)

    def __call__(self, x: jax.Array, *, ctx: nnx.Context) -> jax.Array:
        x = self.bn(self.linear(x), ctx=ctx)
        return self.dropout(x, deterministic=False, ctx=ctx)


model = Model.init(jax.random.key(0))()
y = model(jnp.ones((4, 2)), ctx=nnx.context(dropout=1, flags=dict(use_running_average=False)))
assert_type(y, jax.Array)
assert y.shape == (4, 3)
