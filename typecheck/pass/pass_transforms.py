"""nnx.jit / grad / value_and_grad / vmap keep the wrapped function's signature (ParamSpec)."""

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import assert_type

import nnx
from typecheck.models import Linear


def loss(model: Linear, x: jax.Array) -> jax.Array:
    return jnp.mean(model(x) ** 2)


model = Linear(2, 1, rngs=nnx.Rngs(0))
x = jnp.ones((4, 2))

step = nnx.jit(loss)
assert_type(step(model, x), jax.Array)
assert_type(step(model=model, x=x), jax.Array)


@nnx.jit
def train_step(model: Linear, x: jax.Array) -> jax.Array:
    grads: nnx.State[Linear] = nnx.grad(loss)(model, x)  # grad returns Any: annotate what you know
    value, again = nnx.value_and_grad(loss, wrt=nnx.Param)(model, x)
    assert grads.paths == again.paths
    out: jax.Array = value
    return out


assert_type(train_step(model, x), jax.Array)
assert_type(nnx.grad(loss, wrt="params")(model, x), Any)
assert_type(nnx.value_and_grad(loss)(model, x), tuple[jax.Array, Any])


def with_static(model: Linear, x: jax.Array, scale: float) -> jax.Array:
    return model(x) * scale


compiled = nnx.jit(with_static, static_argnums=2)
assert_type(compiled(model, x, 2.0), jax.Array)
