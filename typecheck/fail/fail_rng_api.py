"""The jax.random helpers on streams are checked against the jax function's signature."""

import jax.numpy as jnp

import nnx

rngs = nnx.Rngs(0)
rngs.normal(shape=3.5)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
rngs.bernoulli(0.5, (2,), dtype=jnp.float32)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
rngs.uniform(shape=(2,), maxval="high")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
