"""Flax 0.12's RNG and transform API keeps the checkers' types: the ``jax.random``
helpers on streams are typed as the jax function minus its key, and the decorators
keep the decorated function's signature."""

from typing import Any, assert_type

import jax
import jax.numpy as jnp

import nnx

rngs = nnx.Rngs(0, params=1)
assert_type(rngs.normal((2, 3)), jax.Array)
assert_type(rngs.params.uniform((4,), minval=-1.0), jax.Array)
assert_type(rngs["params"], nnx.RngStream)
assert_type(rngs.split({"params": 4, ...: None}), nnx.Rngs)
assert_type(rngs.params.lecun_normal()((3, 2)), jax.Array)
assert_type(nnx.RngStream(0, tag="noise").broadcast(3), nnx.RngStream)
backups = nnx.split_rngs(rngs, splits=2)
assert_type(backups, nnx.SplitBackups)
nnx.restore_rngs(backups)
assert_type(nnx.split_rngs(rngs, splits=2, graph_updates=False), nnx.Rngs)
nnx.restore_rngs(nnx.fork_rngs(rngs))


@nnx.split_rngs(splits=4)
def count_keys(r: nnx.Rngs, scale: float) -> float:
    return r.params().shape[0] * scale


assert_type(count_keys(rngs, 2.0), float)


@nnx.grad(argnums=1)
def loss(scale: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.sum(scale * x**2)


assert_type(loss(jnp.array(2.0), jnp.ones(3)), Any)
step = nnx.jit_partial(nnx.Linear.__call__, nnx.Linear(2, 3, rngs=rngs))
assert_type(step(jnp.ones((1, 2))), jax.Array)
