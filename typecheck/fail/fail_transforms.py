"""Calls through nnx.jit / nnx.grad are checked against the wrapped signature; a wrt=
filter that matches nothing needs the plugin."""

import jax
import jax.numpy as jnp

import nnx
from typecheck.models import Block, Linear


def loss(model: Linear, x: jax.Array) -> jax.Array:
    return jnp.mean(model(x) ** 2)


model = Linear(2, 1, rngs=nnx.Rngs(0))
block = Block(2, 1, rngs=nnx.Rngs(0))
x = jnp.ones((4, 2))
step = nnx.jit(loss)

step(block, x)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
step(model)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
step(model, x, 3)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
step(model, y=x)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
text: str = step(model, x)  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
nnx.grad(loss)(model, "x")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
nnx.value_and_grad(loss)(x, model)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
nnx.grad(loss, wrt=nnx.BatchStat)  # type: ignore[nnx-wrt]
nnx.value_and_grad(loss, wrt="batch_stats")  # type: ignore[nnx-wrt]
nnx.grad(loss, wrt=3)  # type: ignore[nnx-filter]  # pyright: ignore[reportCallIssue, reportArgumentType]
nnx.grad(loss, wrt="parmas")  # type: ignore[nnx-collection]
