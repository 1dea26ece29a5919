"""The plugin's exact messages for wrt= filters (run by tests/test_typecheck.py)."""

import jax
import jax.numpy as jnp
import optax

import nnx
from typecheck.models import Block, Linear


def loss(model: Linear, x: jax.Array) -> jax.Array:
    return jnp.mean(model(x) ** 2)


def block_loss(x: jax.Array, block: Block) -> jax.Array:
    return jnp.mean(block(x))


nnx.grad(loss, wrt=nnx.BatchStat)  # E: nnx.grad: wrt= matches no state of Linear, so the gradient would be empty; its state is: b: Param, w: Param  [nnx-wrt]
nnx.value_and_grad(loss, wrt="batch_stats")  # E: nnx.value_and_grad: wrt= matches no state of Linear, so the gradient would be empty; its state is: b: Param, w: Param  [nnx-wrt]
nnx.grad(loss, wrt="parmas")  # E: No Variable kind declares the collection "parmas"; known collections: "batch_stats", "cache", "count", "intermediates", "lora", "metric_state", "nodes", "opt_state", "params", "perturbations", "rng_counts", "rng_keys", "rngs", "variables" (declare one with `class MyKind(nnx.Variable, collection="parmas")`)  [nnx-collection]
nnx.grad(loss, wrt=3)  # E: 3 (int) is not a filter; use a Variable type (nnx.Param), a collection string such as "params", ..., a predicate (path, value) -> bool, a tuple of filters, or nnx.Not / nnx.All / nnx.Any / nnx.PathContains / nnx.buffers  [nnx-filter]
nnx.grad(block_loss, argnums=1, wrt=nnx.Cache)  # E: nnx.grad: wrt= matches no state of Block, so the gradient would be empty; its state is: bn.mean: BatchStat, bn.scale: Param, bn.var: BatchStat, calls: Count, linear.b: Param, linear.w: Param  [nnx-wrt]
nnx.grad(block_loss, argnums=1, wrt=nnx.BatchStat)
nnx.grad(loss, wrt=nnx.Param)
nnx.Optimizer(Linear(1, 1, rngs=nnx.Rngs(0)), optax.sgd(0.1), wrt=nnx.BatchStat)  # E: nnx.Optimizer: wrt= matches no state of Linear, so the gradient would be empty; its state is: b: Param, w: Param  [nnx-wrt]
reveal_type(nnx.jit(loss))  # N: Revealed type is "nnx.transforms.jit.JitWrapped[[model: typecheck.models.Linear, x: jax._src.basearray.Array], jax._src.basearray.Array]"
